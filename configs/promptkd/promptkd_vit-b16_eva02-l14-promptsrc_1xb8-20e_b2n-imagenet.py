_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

# A teacher of another CLIP family: the PromptSRC EVA02-L/14 teacher of
# configs/promptsrc/promptsrc_eva02-l14_1xb8-16shot-20e_b2n-imagenet.py
# (its stage-(a) checkpoint) distils into the OpenAI ViT-B/16 student; the
# projector maps the student's 512 dimensions to EVA02's 768.
model = dict(
    teacher=dict(
        clip=dict(
            _delete_=True, model_name='EVA02-L-14',
            pretrained='merged2b_s4b_b131k'),
        checkpoint='work_dirs/promptsrc_eva02-l14_1xb8-16shot-20e_b2n-'
        'imagenet/epoch_20.pth'))
