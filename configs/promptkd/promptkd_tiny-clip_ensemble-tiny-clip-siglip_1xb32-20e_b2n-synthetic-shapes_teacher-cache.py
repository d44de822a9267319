# The offline demo's teacher ensemble trained from one teacher cache per
# member: no teacher is built. Record each member once (each runs over the
# 20 epochs' views):
#   python tools/misc/cache_teacher_logits.py CONFIG --member 0
#   python tools/misc/cache_teacher_logits.py CONFIG --member 1
# with CONFIG the ensemble config below (the caches land in
# work_dirs/teacher_cache/<its name>_member<i>). The samples carry the
# members' logits mixed as the ensemble mixes them online; with the seed
# they were recorded with, the student is the online ensemble's to float
# rounding. Adding a member costs one recording. See
# docs/teacher_ensembles.md.
_base_ = [
    './promptkd_tiny-clip_ensemble-tiny-clip-siglip_1xb32-20e_b2n-'
    'synthetic-shapes.py'
]

teacher_cache = 'work_dirs/teacher_cache/promptkd_tiny-clip_ensemble-' \
    'tiny-clip-siglip_1xb32-20e_b2n-synthetic-shapes_member'

# The caches hold the members' logits and text features; the projector's
# output size is the text member's feature size (tiny CLIP teacher: 96).
model = dict(teacher=None, projector=dict(out_channels=96))
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        _scope_='mmpromptkd',
        type='TeacherCachedDataset',
        # One cache per member, in the order of the ensemble's members.
        cache=[teacher_cache + '0', teacher_cache + '1'],
        ensemble={{_base_.model.teacher}},
        views='recorded',
        dataset={{_base_.train_dataloader.dataset}}))
