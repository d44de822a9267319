_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

# Teacher row: zero-shot CLIP ViT-L/14 ("a photo of a {}.", no prompts).
model = dict(
    teacher=dict(
        _delete_=True,
        type='PromptedCLIP',
        clip=dict(openai_file='checkpoints/clip/ViT-L-14.pt'),
        ctx_init='a photo of a'))
