_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

# Ablation: the student keeps its own prompted text encoder (depth 9,
# 4 tokens) and classifies with it; no projector, no shared features.
model = dict(
    student=dict(text_prompt_depth=9, text_prompt_length=4),
    shared_text_features=False,
    projector=None)
