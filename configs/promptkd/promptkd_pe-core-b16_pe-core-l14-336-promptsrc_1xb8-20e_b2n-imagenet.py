_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

# Within Meta's PE-Core family: the PromptSRC PE-Core-L/14 (336 px) teacher
# of configs/promptsrc/promptsrc_pe-core-l14-336_1xb8-16shot-20e_b2n-
# imagenet.py (its stage-(a) checkpoint) distils into PE-Core-B/16 (224 px)
# with deep visual prompts; the projector maps 1024 to 1024 dimensions. Both
# normalise with mean = std = 0.5; the pipeline gives the student its 224 px
# images (squashed, bilinear, as PE-Core does) and the teacher gets them
# resized to 336.
model = dict(
    data_preprocessor=dict(
        type='mmpromptkd.LabelFreeDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        to_rgb=True),
    student=dict(
        clip=dict(_delete_=True, model_name='PE-Core-B-16',
                  pretrained='meta')),
    teacher=dict(
        clip=dict(_delete_=True, model_name='PE-Core-L-14-336',
                  pretrained='meta'),
        checkpoint='work_dirs/promptsrc_pe-core-l14-336_1xb8-16shot-20e_b2n-'
        'imagenet/epoch_20.pth'))

train_pipeline = [
    dict(type='mmpromptkd.LoadImageFromFileSafe'),
    dict(type='RandomResizedCrop', scale=224, interpolation='bilinear',
         backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='mmpromptkd.LoadImageFromFileSafe'),
    dict(type='Resize', scale=(224, 224), interpolation='bilinear',
         backend='pillow'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
