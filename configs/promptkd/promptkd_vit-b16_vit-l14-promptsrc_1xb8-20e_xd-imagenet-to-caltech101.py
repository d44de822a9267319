_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-caltech101.py']

# Cross-dataset transfer: the ImageNet (all 1000 classes) PromptSRC teacher
# labels the unlabeled train split of Caltech101; prompts of depth 3,
# the depth of the converted ImageNet cross-dataset teacher (the converter
# prints it; another depth is an error naming it, never a partial load).
model = dict(
    student=dict(vision_prompt_depth=3),
    teacher=dict(
        vision_prompt_depth=3,
        text_prompt_depth=3,
        checkpoint='checkpoints/promptkd_teachers/imagenet_xd.pth'),
    # The official cross-dataset script uses 1000 for every target.
    distill_loss=dict(loss_weight=1000.0))
