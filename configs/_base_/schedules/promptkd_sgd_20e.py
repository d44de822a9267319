# Reference schedule of PromptKD stage (b): SGD, 20 epochs, one warm-up
# epoch at a constant 1e-5, then cosine decay over the 20 epochs.
base_lr = 0.005
max_epochs = 20
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=base_lr, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    # mmengine's ConstantLR restores the lr at step `end - 1`, so end=2
    # gives exactly one epoch at 1e-5.
    dict(type='ConstantLR', factor=1e-5 / base_lr, begin=0, end=2,
         by_epoch=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0.0, begin=0,
         end=max_epochs, by_epoch=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()
# The reference's batch size; lr is not scaled automatically.
auto_scale_lr = dict(base_batch_size=8, enable=False)
