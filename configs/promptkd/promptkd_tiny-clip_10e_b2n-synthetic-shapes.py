# Offline CPU demo of the whole stage (b) / (c) pipeline on tiny CLIPs and
# the synthetic shapes domain; runs in a few minutes on 2 CPU cores.
_base_ = [
    '../_base_/models/promptkd_tiny-clip.py',
    '../_base_/datasets/synthetic-shapes.py',
    '../_base_/schedules/promptkd_sgd_20e.py',
    '../_base_/default_runtime.py',
]

# Measured on seed 1 (HM of the student, zero-shot student 63.5): lr 0.005
# (the reference's) 57.5, 0.02 65.9, 0.05 65.0 -- the projector starts from
# scratch and gets only 200 steps here.
base_lr = 0.02
max_epochs = 10
optim_wrapper = dict(optimizer=dict(lr=base_lr))
param_scheduler = [
    # mmengine's ConstantLR restores the lr at step `end - 1`, so end=2
    # gives exactly one epoch at 1e-5.
    dict(type='ConstantLR', factor=1e-5 / base_lr, begin=0, end=2,
         by_epoch=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0.0, begin=0,
         end=max_epochs, by_epoch=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
default_hooks = dict(logger=dict(interval=10))
