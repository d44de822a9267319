# The PromptSRC baseline on a ViT-B/16 CLIP: the ViT-L/14 teacher's
# settings with the reference's batch 4 and lr 0.0025.
_base_ = ['./promptsrc_vit-l14.py']

model = dict(clip=dict(openai_file='checkpoints/clip/ViT-B-16.pt'))

base_lr = 0.0025
max_epochs = 20
optim_wrapper = dict(optimizer=dict(lr=base_lr))
param_scheduler = [
    # Epoch 0 runs at 1e-5 (mmengine's ConstantLR restores the lr at step
    # `end - 1`); the cosine then restarts at epoch 1 as in Dassl with
    # WARMUP_RECOUNT=True: epoch k >= 1 runs at cos((k - 1) / max_epochs),
    # max_epochs read from train_cfg (a shortened run keeps the schedule).
    dict(type='ConstantLR', factor=1e-5 / base_lr, begin=0, end=2,
         by_epoch=True),
    dict(type='DasslCosineAnnealingLR', eta_min=0.0, begin=1, by_epoch=True),
]
# The total batch the lr is set for (--auto-scale-lr scales from it).
auto_scale_lr = dict(base_batch_size=4)
