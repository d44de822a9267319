_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

# Ablation: no prompts; only the projector trains.
model = dict(student=dict(vision_prompt_depth=0))
