# Distillation streamed from tar shards (UnlabeledShards), for unlabeled
# data that does not fit a folder, on the offline CPU demo. Write shards of
# an unlabeled folder with
#   python tools/misc/generate_shapes_dataset.py data/shapes_unlabeled \
#       --unlabeled-per-class 64
#   python tools/misc/images_to_shards.py data/shapes_unlabeled/images \
#       data/shapes_shards --images-per-shard 160
# (16 shards of 160 images). A stream has no length: training counts
# iterations (mmengine's IterBasedTrainLoop); 80 iterations of 32 images are
# one pass over the 2,560 images. Each epoch of the stream, every shard is
# read once by one data-loader worker of one process (see UnlabeledShards).
# Test: base / novel / HM on the labeled test split of data/synthetic_shapes.
_base_ = ['./promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py']

max_iters = 1000
base_lr = 0.001
train_dataloader = dict(
    num_workers=0,
    # The stream deals the shards to the readers itself.
    sampler=None,
    dataset=dict(
        _delete_=True,
        _scope_='mmpromptkd',
        type='UnlabeledShards',
        shards='data/shapes_shards/shard-{000000..000015}.tar',
        classes='data/shapes_unlabeled/classes.txt',
        seed=0,
        shuffle_buffer=1000,
        pipeline={{_base_.train_pipeline}}))
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
    val_interval=max_iters)
# The demo's schedule by iteration: a warm-up pass (80 iterations) at 1e-5,
# then Dassl's cosine to 0, its length read from max_iters (ConstantLR
# restores the lr at step `end - 1`).
param_scheduler = [
    dict(type='ConstantLR', factor=1e-5 / base_lr, begin=0, end=81,
         by_epoch=False),
    dict(type='DasslCosineAnnealingLR', eta_min=0.0, begin=80,
         by_epoch=False),
]
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
