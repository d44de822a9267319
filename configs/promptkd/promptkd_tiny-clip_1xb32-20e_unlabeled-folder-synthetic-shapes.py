# The "distill on your own images" recipe on the offline CPU demo: an
# unlabeled folder of synthetic shapes and its class names, written by
#   python tools/misc/generate_shapes_dataset.py data/shapes_unlabeled \
#       --unlabeled-per-class 64
# Validation: teacher-student agreement on held-out unlabeled images; test:
# base / novel / HM on the labeled test split of data/synthetic_shapes
# (the small labeled set a user may have), as in the base-to-novel demo.
_base_ = ['./promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py']

unlabeled_root = 'data/shapes_unlabeled'
unlabeled_images = dict(
    _scope_='mmpromptkd',
    type='UnlabeledImages',
    data_root=unlabeled_root + '/images',
    classes=unlabeled_root + '/classes.txt',
    heldout_fraction=0.1,
    heldout_seed=0)

# Images of any size: held-out and test images are resized to the tiny
# CLIPs' 32 px (short edge, then a centre crop), as the ViT-B/16 recipe
# resizes to 224 px; the generated 32 px shapes pass unchanged.
test_pipeline = [
    dict(type='mmpromptkd.LoadImageFromFileSafe'),
    dict(type='ResizeEdge', scale=32, edge='short', interpolation='bicubic',
         backend='pillow'),
    dict(type='CenterCrop', crop_size=32),
    dict(type='PackInputs'),
]

model = dict(predict_teacher=True)
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        split='train',
        pipeline={{_base_.train_pipeline}},
        **unlabeled_images))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        split='heldout',
        pipeline=test_pipeline,
        **unlabeled_images))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
val_evaluator = dict(
    _delete_=True, _scope_='mmpromptkd', type='TeacherStudentAgreement')
train_cfg = dict(val_interval=1)
default_hooks = dict(
    checkpoint=dict(save_best='agreement/top1', rule='greater'))
