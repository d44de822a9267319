_base_ = ['./promptsrc_vit-l14_1xb8-16shot-20e_b2n-imagenet.py']

# Stage (a) on an EVA02-L/14 CLIP instead of OpenAI's ViT-L/14: timm's EVA
# image tower (rotary positions, which the visual prompts do not take) and
# open_clip's text tower, the same prompts, losses and schedule. The weights
# are read from the local open_clip / Hugging Face cache (nothing is
# downloaded; see docs/open_clip_coverage.md). EVA02 uses CLIP's image
# mean, std and bicubic resize, so the data pipeline is unchanged.
model = dict(
    clip=dict(
        _delete_=True, model_name='EVA02-L-14',
        pretrained='merged2b_s4b_b131k'))
