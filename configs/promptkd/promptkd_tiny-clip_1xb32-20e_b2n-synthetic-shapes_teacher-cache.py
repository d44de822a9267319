# The offline demo trained on cached teacher logits: no teacher is built.
# Record the cache once (the teacher runs over the 20 epochs' views):
#   python tools/misc/cache_teacher_logits.py \
#       configs/promptkd/promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py
# then train any number of students from it. With the seed it was recorded
# with (randomness.seed=1) the student is the demo's to float rounding;
# other seeds shuffle the images differently and see the same views (or
# draw views from the recorded pool with views='random'). See
# docs/teacher_cache.md.
_base_ = ['./promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py']

teacher_cache = \
    'work_dirs/teacher_cache/promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes'

# The cache holds the teacher's logits and text features; the projector's
# output size is the teacher's feature size (tiny teacher: 96).
model = dict(teacher=None, projector=dict(out_channels=96))
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        _scope_='mmpromptkd',
        type='TeacherCachedDataset',
        cache=teacher_cache,
        views='recorded',
        dataset={{_base_.train_dataloader.dataset}}))
