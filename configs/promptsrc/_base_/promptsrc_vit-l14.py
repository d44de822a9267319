# PromptSRC teacher on a ViT-L/14 CLIP (stage (a) of PromptKD): deep vision
# and text prompts of depth 9 with 4 + 4 tokens, cross-entropy plus the
# self-regulating terms, and Gaussian prompt aggregation over 20 epochs.
# The OpenAI CLIP file is expected under checkpoints/clip/ (see README).
_base_ = [
    '../../_base_/schedules/promptkd_sgd_20e.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    type='PromptSRCClassifier',
    # Build in our scope also when called from mmpretrain (mmpretrain.apis).
    _scope_='mmpromptkd',
    clip=dict(openai_file='checkpoints/clip/ViT-L-14.pt'),
    vision_prompt_depth=9,
    vision_prompt_length=4,
    text_prompt_depth=9,
    text_prompt_length=4,
    ctx_init='a photo of a',
    text_loss_weight=25.0,
    image_loss_weight=10.0,
    logit_loss=dict(type='KLLogitLoss', loss_weight=1.0, reduction='mean'),
    # As the official code: the 60 templates' raw features are averaged,
    # then normalised (True normalises each template's features first).
    normalize_template_features=False,
    # Base-to-novel: the training dataset must be the base classes.
    train_subset='base',
)

custom_hooks = [
    dict(type='TrainSubsetCheckHook'),
    dict(type='PromptKDTextFeaturesHook'),
    dict(type='NonFiniteLossHook'),
    dict(type='GaussianPromptAggregationHook', mean=15.0, std=1.0),
    # Exact --resume (per-epoch seeds; the generator states of checkpoints,
    # restored once ResumableEpochBasedTrainLoop skipped the trained batches)
    # and a stop for empty training data, declared here so that they run
    # under any train script.
    dict(type='EpochSeedHook'),
    dict(type='CPUThreadsHook', threads='auto'),
    dict(type='RandomStateHook'),
    dict(type='EmptyClassCheckHook'),
]
