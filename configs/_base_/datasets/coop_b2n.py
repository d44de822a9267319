# CoOp-format base-to-novel data shared by the 11 datasets (see
# docs/datasets.md for the folder layouts); each dataset file sets the type.
# PromptKD trains on the unlabeled train split of all classes; evaluation
# runs over all classes and BaseNovelAccuracy reports base / novel / HM.
dataset_type = 'CoOpDataset'  # replaced by each dataset file
data_root = 'data/'

# Our transform by its scoped name: mmpretrain's inferencers build the test
# pipeline in mmpretrain's scope (mmpretrain's own transforms stay bare).
train_pipeline = [
    dict(type='mmpromptkd.LoadImageFromFileSafe'),
    dict(type='RandomResizedCrop', scale=224, interpolation='bicubic',
         backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='mmpromptkd.LoadImageFromFileSafe'),
    dict(type='ResizeEdge', scale=224, edge='short', interpolation='bicubic',
         backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

# _scope_: the datasets (with the transforms they build) and the metric
# resolve in our scope whatever the default scope, e.g. under mmpretrain's
# browse_dataset.py (which sets mmpretrain's) or in an mmpretrain config.
train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    # As Dassl: the last partial batch is dropped (a batch of one would also
    # break the projector's BatchNorm in training).
    drop_last=True,
    dataset=dict(
        _scope_='mmpromptkd',
        type=dataset_type,
        data_root=data_root,
        split='train',
        subset='all',
        # Few-shot runs (stage a) draw the official code's images for a seed.
        few_shot_sampler='dassl',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=100,
    num_workers=8,
    dataset=dict(
        _scope_='mmpromptkd',
        type=dataset_type,
        data_root=data_root,
        split='val',
        subset='all',
        few_shot_sampler='dassl',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(_scope_='mmpromptkd', type='BaseNovelAccuracy')
test_dataloader = dict(
    batch_size=100,
    num_workers=8,
    dataset=dict(
        _scope_='mmpromptkd',
        type=dataset_type,
        data_root=data_root,
        split='test',
        subset='all',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
test_evaluator = val_evaluator
