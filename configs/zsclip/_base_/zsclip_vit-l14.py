# Zero-shot CLIP ViT-L/14 with the prompt "a photo of a {}.": nothing is
# trained; evaluate with tools/test.py (see docs/teachers.md). The schedule
# is inherited only so that the config is complete.
_base_ = [
    '../../_base_/schedules/promptkd_sgd_20e.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    type='ZeroShotCLIPClassifier',
    # Build in our scope also when called from mmpretrain (mmpretrain.apis).
    _scope_='mmpromptkd',
    clip=dict(openai_file='checkpoints/clip/ViT-L-14.pt'),
    template='a photo of a {}.',
)

# The runtime's hooks (custom_hooks lists replace, not merge).
custom_hooks = [
    dict(type='PromptKDTextFeaturesHook'),
    dict(type='NonFiniteLossHook'),
    # Exact --resume (per-epoch seeds; the generator states of checkpoints,
    # restored once ResumableEpochBasedTrainLoop skipped the trained batches)
    # and a stop for empty training data, declared here so that they run
    # under any train script.
    dict(type='EpochSeedHook'),
    dict(type='CPUThreadsHook', threads='auto'),
    dict(type='RandomStateHook'),
    dict(type='EmptyClassCheckHook'),
]
