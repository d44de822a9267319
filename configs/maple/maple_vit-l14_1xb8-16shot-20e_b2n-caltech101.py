_base_ = [
    '../_base_/datasets/caltech101.py',
    './_base_/maple_vit-l14.py',
]

# Stage (a): 16 labelled images per base class, drawn with the run's seed
# (randomness.seed, 1; the protocol averages seeds 1, 2, 3: --cfg-options
# randomness.seed=2), CoOp's few-shot val split, and the test split of all
# classes for base / novel / HM.
train_dataloader = dict(
    batch_size=8, dataset=dict(subset='base', num_shots=16))
val_dataloader = dict(dataset=dict(num_shots=16))
