# Offline CPU demo of stage (a): a PromptSRC teacher on the tiny "large" CLIP
# of the tiny PromptKD demo and the synthetic shapes domain. Its checkpoint
# plugs into configs/promptkd/promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py
# with --cfg-options model.teacher.checkpoint=<work_dir>/epoch_5.pth (same
# prompt depths and lengths).
_base_ = [
    '../_base_/models/promptkd_tiny-clip.py',
    '../_base_/datasets/synthetic-shapes.py',
    '../_base_/schedules/promptkd_sgd_20e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    _delete_=True,
    type='PromptSRCClassifier',
    _scope_='mmpromptkd',
    # The pre-trained tiny teacher CLIP (clip.checkpoint=None: random
    # weights). Its weights are saved with the prompts so that the
    # distiller's teacher gets the same CLIP.
    clip=dict(
        model_cfg={{_base_.tiny_teacher_clip}},
        quick_gelu=True,
        checkpoint={{_base_.tiny_teacher_clip_checkpoint}}),
    save_clip_weights=True,
    vision_prompt_depth=3,
    vision_prompt_length=4,
    text_prompt_depth=3,
    text_prompt_length=4,
    ctx_init='a photo of a',
    text_loss_weight=25.0,
    image_loss_weight=10.0,
    logit_loss=dict(type='KLLogitLoss', loss_weight=1.0, reduction='mean'),
    train_subset='base',
)

# Batch 32 (10 steps an epoch on 20 x 16 shots): the text encoder runs on
# every base class at every step, so fewer, larger steps keep the CPU demo
# short.
train_dataloader = dict(
    batch_size=32, dataset=dict(subset='base', num_shots=16))
# The total batch the lr is set for (--auto-scale-lr scales from it).
auto_scale_lr = dict(base_batch_size=32)

# Chosen on the val split (HM, seed 1): lr 0.05 / 0.01 / 0.002 give 79.2 /
# 80.0 / 80.7; the same lr is best for the tiny student (44.2 / 56.7 /
# 63.5; 0.0005: 63.0).
base_lr = 0.002
max_epochs = 5
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
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
# Every epoch's checkpoint is kept (175 KB each), for studies of the run.
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=-1))

custom_hooks = [
    dict(type='TrainSubsetCheckHook'),
    dict(type='PromptKDTextFeaturesHook'),
    dict(type='NonFiniteLossHook'),
    # Weights peak at epoch 4 of 5.
    dict(type='GaussianPromptAggregationHook', mean=4.0, std=1.0),
    # Exact --resume (per-epoch seeds; the generator states of checkpoints,
    # restored once ResumableEpochBasedTrainLoop skipped the trained batches)
    # and a stop for empty training data, declared here so that they run
    # under any train script.
    dict(type='EpochSeedHook'),
    dict(type='CPUThreadsHook', threads='auto'),
    dict(type='RandomStateHook'),
    dict(type='EmptyClassCheckHook'),
]
