# An mmpretrain config that distils with mmpromptkd: mmpretrain's default
# scope, runtime and hooks; our model, data and metric (their base files
# build in our scope) and our hook by its scoped name.
_base_ = [
    '../_base_/models/promptkd_tiny-clip.py',
    '../_base_/datasets/synthetic-shapes.py',
]
custom_imports = dict(imports=['mmpromptkd'], allow_failed_imports=False)
default_scope = 'mmpretrain'
# mmengine's Runner, reading checkpoints safely: mmengine's own cannot
# --resume under torch >= 2.6 (its checkpoints hold objects that torch's
# weights-only loading refuses).
runner_type = 'mmpromptkd.SafeLoadingRunner'

# Stores the teacher's text features of the training classes before the
# first step (the distiller needs them), and checks them at evaluation.
custom_hooks = [dict(type='mmpromptkd.PromptKDTextFeaturesHook')]

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True)
train_cfg = dict(by_epoch=True, max_epochs=5, val_interval=5)
# The total batch the lr is set for (--auto-scale-lr scales from it).
auto_scale_lr = dict(base_batch_size=32)
val_cfg = dict()
test_cfg = dict()

# mmpretrain's runtime (configs/_base_/default_runtime.py there).
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
visualizer = dict(
    type='UniversalVisualizer', vis_backends=[dict(type='LocalVisBackend')])
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=None, deterministic=False)
