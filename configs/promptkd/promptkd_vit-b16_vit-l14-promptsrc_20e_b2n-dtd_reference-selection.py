_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_20e_b2n-dtd.py']

# Checkpoint selection of the reference implementation, for comparability
# only: it validates on the base-class *test* images every epoch and reports
# the checkpoint with the best base accuracy (best_b2n_base_epoch_*.pth).
# This looks at the test set; the default configs validate on the CoOp val
# split, and the reported result is the last epoch's.
val_dataloader = dict(dataset=dict(split='test'))
train_cfg = dict(val_interval=1)
default_hooks = dict(checkpoint=dict(save_best='b2n/base', rule='greater'))
