_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

# KD form: MSE between projected student and teacher image features.
model = dict(
    distill_target='features',
    distill_loss=dict(
        _delete_=True, type='FeatureDistillLoss', mode='mse',
        loss_weight=1000.0))
