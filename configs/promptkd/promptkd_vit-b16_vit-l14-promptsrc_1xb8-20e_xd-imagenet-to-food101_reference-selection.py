_base_ = ['./promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_xd-imagenet-to-food101.py']

# Checkpoint selection of the official code (TEST.FINAL_MODEL best_val), for
# comparability only: in cross-dataset transfer it validates on the target's
# *test* images of all classes every epoch and keeps the first epoch with the
# best accuracy (best_b2n_all_epoch_*.pth; test that checkpoint). This looks
# at the test set; the default config reports the last epoch. See
# docs/reference_differences.md.
val_dataloader = dict(dataset=dict(split='test'))
train_cfg = dict(val_interval=1)
default_hooks = dict(checkpoint=dict(save_best='b2n/all', rule='greater'))
