# PromptKD: ViT-B/16 student with deep visual prompts and a projector,
# distilled from a prompted ViT-L/14 teacher (PromptSRC).
# OpenAI CLIP files are expected under checkpoints/clip/ (see README).
model = dict(
    type='PromptKDDistiller',
    # Build in our scope also when called from mmpretrain (mmpretrain.apis).
    _scope_='mmpromptkd',
    student=dict(
        type='PromptedCLIP',
        clip=dict(openai_file='checkpoints/clip/ViT-B-16.pt'),
        vision_prompt_depth=9,
        vision_prompt_length=4),
    teacher=dict(
        type='PromptedCLIP',
        clip=dict(openai_file='checkpoints/clip/ViT-L-14.pt'),
        vision_prompt_depth=9,
        vision_prompt_length=4,
        text_prompt_depth=9,
        text_prompt_length=4,
        ctx_init='a photo of a',
        checkpoint=None),  # set per dataset
    projector=dict(type='FeatureProjector'),
    distill_loss=dict(
        type='KLLogitLoss', tau=1.0, loss_weight=1000.0, reduction='mean'),
)
