# The synthetic shapes domain (docs/synthetic_shapes.md), generated with
#   python tools/misc/generate_shapes_dataset.py data/synthetic_shapes
# 32 px images: no resizing at test time, a mild random crop for training.
_base_ = ['./coop_b2n.py']

dataset_type = 'SyntheticShapes'
data_root = 'data/synthetic_shapes'

train_pipeline = [
    dict(type='mmpromptkd.LoadImageFromFileSafe'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.6, 1.0),
         interpolation='bicubic', backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='mmpromptkd.LoadImageFromFileSafe'),
    dict(type='PackInputs'),
]

# The synthetic domain has no official few-shot draw: the package's rule,
# which does not depend on the order of the split file, is used.
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    # Explicit: mmpretrain's tools/train.py defaults it to True.
    persistent_workers=False,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        few_shot_sampler='mmpromptkd',
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        few_shot_sampler='mmpromptkd',
        pipeline=test_pipeline))
test_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type=dataset_type, data_root=data_root, pipeline=test_pipeline))
