_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

# A non-CLIP student: an mmpretrain ResNet-50 with global average pooling and the
# projector to the teacher's dimension; all of its weights train. Start from
# ImageNet weights by setting init_cfg=dict(type='Pretrained', checkpoint=...).
model = dict(
    student=dict(
        _delete_=True,
        type='BackboneStudent',
        backbone=dict(type='ResNet', depth=50),
        neck=dict(type='GlobalAveragePooling'),
        image_size=224,
        init_cfg=None))
