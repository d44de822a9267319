# The base-to-novel demo with more unlabeled images than the target's train
# split: the split (its labels are never read by distillation) concatenated
# with an unlabeled folder of the same domain, written by
#   python tools/misc/generate_shapes_dataset.py data/shapes_unlabeled \
#       --unlabeled-per-class 64 --first-index 64
# (64 new images per class beyond the 64 of the default train split).
# Evaluation is the demo's: base / novel / HM on the labeled splits.
_base_ = ['./promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py']

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        _scope_='mmpromptkd',
        type='ConcatDataset',
        datasets=[
            dict(
                _scope_='mmpromptkd',
                type='SyntheticShapes',
                data_root='data/synthetic_shapes',
                split='train',
                pipeline={{_base_.train_pipeline}}),
            dict(
                _scope_='mmpromptkd',
                type='UnlabeledImages',
                data_root='data/shapes_unlabeled/images',
                pipeline={{_base_.train_pipeline}}),
        ],
        # The classes (and base / novel split) are the target's, the first
        # dataset's; the folder brings images only.
        ignore_keys=['classes', 'num_base_classes', 'subset']))
