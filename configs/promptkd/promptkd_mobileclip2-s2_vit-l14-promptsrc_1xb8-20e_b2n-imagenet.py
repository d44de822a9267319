_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

# An edge student of another CLIP family: MobileCLIP2-S2 (a convolutional
# FastViT image tower; 256 px images scaled to 0-1 without mean / std)
# distilled from the OpenAI ViT-L/14 PromptSRC teacher of ImageNet. A
# convolutional tower takes no visual prompts, so its whole image tower
# trains with the projector; its text tower is not kept. The pipeline gives
# the student its own images; the teacher gets them re-normalised with
# CLIP's mean and std (teacher_normalization) and resized to 224. The
# weights are read from the local open_clip / Hugging Face cache.
model = dict(
    data_preprocessor=dict(
        type='mmpromptkd.LabelFreeDataPreprocessor',
        mean=[0.0, 0.0, 0.0],
        std=[255.0, 255.0, 255.0],
        to_rgb=True),
    teacher_normalization=dict(
        mean=[122.7709383, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305]),
    student=dict(
        clip=dict(_delete_=True, model_name='MobileCLIP2-S2',
                  pretrained='dfndr2b'),
        vision_prompt_depth=0,
        freeze_clip=False))

# MobileCLIP2's preprocessing: the short side to 256 (bilinear), centre crop.
train_pipeline = [
    dict(type='mmpromptkd.LoadImageFromFileSafe'),
    dict(type='RandomResizedCrop', scale=256, interpolation='bilinear',
         backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='mmpromptkd.LoadImageFromFileSafe'),
    dict(type='ResizeEdge', scale=256, edge='short', interpolation='bilinear',
         backend='pillow'),
    dict(type='CenterCrop', crop_size=256),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
