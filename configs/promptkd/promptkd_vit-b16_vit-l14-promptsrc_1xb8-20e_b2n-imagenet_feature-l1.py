_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

# KD form: L1 between projected student and teacher image features. Both
# losses are means over elements, so the logit loss's weight is kept.
model = dict(
    distill_target='features',
    distill_loss=dict(
        _delete_=True, type='FeatureDistillLoss', mode='l1',
        loss_weight=1000.0))
