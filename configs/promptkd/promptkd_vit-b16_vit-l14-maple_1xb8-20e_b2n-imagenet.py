_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py']

# Teacher row: a MaPLe ViT-L/14 teacher (coupled prompts, 2 tokens, depth 9),
# trained with configs/maple/maple_vit-l14_1xb8-16shot-20e_b2n-imagenet.py.
model = dict(
    teacher=dict(
        _delete_=True,
        type='MaPLeClassifier',
        clip=dict(openai_file='checkpoints/clip/ViT-L-14.pt'),
        prompt_depth=9,
        prompt_length=2,
        checkpoint='checkpoints/promptkd_teachers/imagenet_maple.pth'))
