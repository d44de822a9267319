# ImageNet distillation on cached teacher logits: the ViT-L/14 teacher runs
# once, for every seed and ablation that reuses its views. Record with
#   python tools/misc/cache_teacher_logits.py \
#       configs/promptkd/promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py
# (20 views of each image; float16 logits over the 1000 classes: 2 KB per
# view) and train as usual with this config. See docs/teacher_cache.md.
_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

teacher_cache = \
    'work_dirs/teacher_cache/promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet'

# No teacher is built; the projector maps to the ViT-L/14 feature size.
model = dict(teacher=None, projector=dict(out_channels=768))
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        _scope_='mmpromptkd',
        type='TeacherCachedDataset',
        cache=teacher_cache,
        views='recorded',
        dataset={{_base_.train_dataloader.dataset}}))
