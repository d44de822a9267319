_base_ = [
    '../_base_/models/promptkd_vit-b16_vit-l14.py',
    '../_base_/datasets/sun397.py',
    '../_base_/schedules/promptkd_sgd_20e.py',
    '../_base_/default_runtime.py',
]

# Teacher: the released PromptSRC ViT-L/14 teacher of SUN397, converted with
# tools/model_converters/promptkd_official_to_mmpromptkd.py, or a stage-(a)
# checkpoint of our own.
model = dict(
    teacher=dict(checkpoint='checkpoints/promptkd_teachers/sun397.pth'),
    distill_loss=dict(loss_weight=1000.0))
