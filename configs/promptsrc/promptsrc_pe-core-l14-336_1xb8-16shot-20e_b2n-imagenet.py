_base_ = ['./promptsrc_vit-l14_1xb8-16shot-20e_b2n-imagenet.py']

# Stage (a) on Meta's PE-Core-L/14 at 336 px instead of OpenAI's ViT-L/14:
# timm's EVA-style image tower (rotary positions, which the visual prompts
# do not take; attention pooling) and open_clip's text tower with a 32-token
# context; the same prompts, losses and schedule. The weights are read from
# the local open_clip / Hugging Face cache (nothing is downloaded; see
# docs/open_clip_coverage.md). PE-Core's preprocessing: the image squashed
# to 336 x 336 (bilinear) and normalised with mean = std = 0.5.
model = dict(
    clip=dict(_delete_=True, model_name='PE-Core-L-14-336', pretrained='meta'),
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        to_rgb=True))

train_pipeline = [
    dict(type='mmpromptkd.LoadImageFromFileSafe'),
    dict(type='RandomResizedCrop', scale=336, interpolation='bilinear',
         backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='mmpromptkd.LoadImageFromFileSafe'),
    dict(type='Resize', scale=(336, 336), interpolation='bilinear',
         backend='pillow'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
