_base_ = ['./promptsrc_vit-l14_1xb8-16shot-20e_b2n-imagenet.py']

# Stage (a) on Google's SigLIP2 ViT-L/16 at 256 px instead of OpenAI's
# ViT-L/14: timm's ViT image tower with attention pooling, a non-causal text
# tower read at its last position with a 64-token context, and the Gemma
# tokenizer (its tokenizer.json, read from the local Hugging Face cache with
# the `tokenizers` package); the same prompts, losses and schedule. The
# logit bias of the sigmoid loss is left out (softmax ignores a shift per
# image). The weights are read from the local open_clip / Hugging Face cache
# (nothing is downloaded; see docs/open_clip_coverage.md). SigLIP2's
# preprocessing: the image squashed to 256 x 256 (bicubic) and normalised
# with mean = std = 0.5.
model = dict(
    clip=dict(
        _delete_=True, model_name='ViT-L-16-SigLIP2-256', pretrained='webli'),
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        to_rgb=True))

train_pipeline = [
    dict(type='mmpromptkd.LoadImageFromFileSafe'),
    dict(type='RandomResizedCrop', scale=256, interpolation='bicubic',
         backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='mmpromptkd.LoadImageFromFileSafe'),
    dict(type='Resize', scale=(256, 256), interpolation='bicubic',
         backend='pillow'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
