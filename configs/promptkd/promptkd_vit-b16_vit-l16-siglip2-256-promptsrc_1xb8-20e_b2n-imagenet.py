_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

# A teacher of another CLIP family: the PromptSRC SigLIP2 ViT-L/16 (256 px)
# teacher of configs/promptsrc/promptsrc_vit-l16-siglip2-256_1xb8-16shot-
# 20e_b2n-imagenet.py (its stage-(a) checkpoint) distils into the OpenAI
# ViT-B/16 student; the projector maps 512 to 1024 dimensions. The pipeline
# and the data preprocessor are the student's (224 px, CLIP's mean and
# std); the teacher gets the images re-normalised with SigLIP2's mean = std
# = 0.5 and resized to 256.
model = dict(
    teacher_normalization=dict(
        mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
    teacher=dict(
        clip=dict(
            _delete_=True, model_name='ViT-L-16-SigLIP2-256',
            pretrained='webli'),
        checkpoint='work_dirs/promptsrc_vit-l16-siglip2-256_1xb8-16shot-20e_'
        'b2n-imagenet/epoch_20.pth'))
