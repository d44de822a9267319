# Reference schedule of PromptKD stage (b) (Dassl's SGD + cosine with a
# constant warm-up, WARMUP_RECOUNT=True): 20 epochs, epoch 0 at 1e-5, then
# the cosine restarts, epoch k >= 1 at 0.0025 * (1 + cos(pi * (k - 1) / 20))
# (epoch 1: 0.005, epoch 19: 1.22e-4).
base_lr = 0.005
max_epochs = 20
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=base_lr, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    # Epoch 0 runs at 1e-5 (mmengine's ConstantLR restores the lr at step
    # `end - 1`); the cosine then restarts at epoch 1 as in Dassl with
    # WARMUP_RECOUNT=True: epoch k >= 1 runs at cos((k - 1) / max_epochs),
    # max_epochs read from train_cfg (a shortened run keeps the schedule).
    dict(type='ConstantLR', factor=1e-5 / base_lr, begin=0, end=2,
         by_epoch=True),
    dict(type='DasslCosineAnnealingLR', eta_min=0.0, begin=1, by_epoch=True),
]
# mmengine's EpochBasedTrainLoop that resumes mid-epoch without training
# a batch twice.
train_cfg = dict(
    type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()
# The total batch the lr is set for (the reference's: 8 on one GPU). Runs
# with another total batch (more GPUs) keep the lr and log a warning;
# tools/train.py --auto-scale-lr scales it linearly instead.
auto_scale_lr = dict(base_batch_size=8)
