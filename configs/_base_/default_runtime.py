# Runtime shared by every mmpromptkd config.
default_scope = 'mmpromptkd'
# mmengine's Runner, except that checkpoints (--resume, load_from, test) are
# read with weights_only=True and an explicit allowlist. Scoped, as train
# scripts (ours, mmpretrain's) build it from mmengine's root registry.
runner_type = 'mmpromptkd.SafeLoadingRunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # As the official code: the last checkpoint is kept (and the best one
    # where a config sets save_best). Checkpoints hold what training
    # changed, not the frozen CLIP weights (a ViT-B/16 student: 8-11 MiB).
    # SafeCheckpointHook: mmengine's hook with an atomic last_checkpoint,
    # the old checkpoint removed only after the new one is written, and
    # stale temporary files of killed runs cleaned at the start.
    checkpoint=dict(
        type='SafeCheckpointHook', interval=1, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # mmpretrain's; tools/test.py --show / --show-dir enable it.
    visualization=dict(type='VisualizationHook', enable=False),
)

# PromptKDTextFeaturesHook computes the teacher's text features once and
# checks them against every dataset the model runs on; NonFiniteLossHook
# stops at the first NaN / inf loss, before a bad checkpoint is written.
# CPUThreadsHook: on the CPU, one torch thread for small models (the tiny
# demo's distillation: 1.07x slower than 2 threads on 2 idle cores, 1.98x
# faster when one other job shares them; benchmarks/cpu_threads.py),
# the idle CPUs for large ones; OMP_NUM_THREADS or threads=N override it.
custom_hooks = [
    dict(type='CPUThreadsHook', threads='auto'),
    dict(type='PromptKDTextFeaturesHook'),
    dict(type='NonFiniteLossHook'),
    # Exact --resume (per-epoch seeds; the generator states of checkpoints,
    # restored once ResumableEpochBasedTrainLoop skipped the trained batches)
    # and a stop for empty training data, declared here so that they run
    # under any train script.
    dict(type='EpochSeedHook'),
    dict(type='RandomStateHook'),
    dict(type='EmptyClassCheckHook'),
]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
# The run's seed; the datasets' few-shot draws follow it (their seed=None),
# so that --cfg-options randomness.seed=2 is all a run of seed 2 needs.
randomness = dict(seed=1, deterministic=False)
