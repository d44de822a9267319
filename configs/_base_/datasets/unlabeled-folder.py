# Your own domain: a folder of unlabeled images and a file of class names
# (docs/unlabeled_data.md):
#   data/my_domain/images/**.jpg   any tree of images; no labels
#   data/my_domain/classes.txt     one class name per line
# A seeded 5 % of the images is held out; validation reports how often the
# student agrees with its teacher there (TeacherStudentAgreement, a signal
# that needs no labels). With a small labeled set, test on it instead (see
# the docs).
_base_ = ['./coop_b2n.py']

unlabeled_images = dict(
    _scope_='mmpromptkd',
    type='UnlabeledImages',
    data_root='data/my_domain/images',
    classes='data/my_domain/classes.txt',
    heldout_fraction=0.05,
    heldout_seed=0)

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
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True, _scope_='mmpromptkd', type='TeacherStudentAgreement')
test_evaluator = val_evaluator
