# MaPLe teacher on a ViT-L/14 CLIP (stage (a) of PromptKD): a 2-token text
# context and deep text prompts of depth 9; the vision prompt of each block
# is a learned linear map of that block's text prompt. Cross-entropy only.
_base_ = [
    '../../_base_/schedules/promptkd_sgd_20e.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    type='MaPLeClassifier',
    # Build in our scope also when called from mmpretrain (mmpretrain.apis).
    _scope_='mmpromptkd',
    clip=dict(openai_file='checkpoints/clip/ViT-L-14.pt'),
    prompt_depth=9,
    prompt_length=2,
    ctx_init='a photo of a',
    train_subset='base',
)

custom_hooks = [
    dict(type='TrainSubsetCheckHook'),
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
