_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-eurosat.py']

# Checkpoint selection of the official code (TEST.FINAL_MODEL best_val), for
# comparability only: it validates on the base-class *test* images every
# epoch (base-class text features only) and keeps the first epoch with the
# best base accuracy (best_b2n_base_epoch_*.pth; test that checkpoint). This
# looks at the test set; the default config validates on the CoOp val split
# and reports the last epoch. See docs/reference_differences.md.
val_dataloader = dict(dataset=dict(split='test'))
train_cfg = dict(val_interval=1)
default_hooks = dict(checkpoint=dict(save_best='b2n/base', rule='greater'))
