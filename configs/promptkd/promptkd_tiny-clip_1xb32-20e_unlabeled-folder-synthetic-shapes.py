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
        pipeline={{_base_.test_pipeline}},
        **unlabeled_images))
val_evaluator = dict(
    _delete_=True, _scope_='mmpromptkd', type='TeacherStudentAgreement')
train_cfg = dict(val_interval=1)
default_hooks = dict(
    checkpoint=dict(save_best='agreement/top1', rule='greater'))
