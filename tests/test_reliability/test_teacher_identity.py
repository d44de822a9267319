"""A teacher is one identity end to end.

Its prompts come from a stage-(a) file trained on its own frozen CLIP, in a
run that took optimizer steps; the features, caches, checkpoints and
exports made from it record it, and every consumer compares the record with
the teacher it has.
"""
import json

import pytest
import torch

from mmpromptkd.apis import export_student
from mmpromptkd.models.clip import build_clip
from mmpromptkd.models.utils import frozen_weights_record
from mmpromptkd.models.utils.teacher_provenance import (
    UntrainedTeacherError, teacher_record)
from mmpromptkd.registry import MODELS
from mmpromptkd.utils import load_checkpoint_file
from mmpromptkd.utils.state_dict_check import CheckpointMismatchError

CLASSES = ['red circle', 'blue square', 'green star']
PROMPTS = dict(vision_prompt_depth=1, text_prompt_depth=1)


@pytest.fixture
def clip_files(tmp_path, tiny_large_clip_cfg) -> list:
    """Two weight sources of one architecture: other random weights."""
    sources = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        path = tmp_path / f'clip{seed}.pth'
        torch.save(build_clip(tiny_large_clip_cfg).state_dict(), path)
        sources.append(dict(tiny_large_clip_cfg, checkpoint=str(path)))
    return sources


def _teacher(clip: dict, **options):
    """A prompted teacher (random prompts)."""
    return MODELS.build(dict(type=options.pop('type', 'PromptedCLIP'),
                             clip=clip, **PROMPTS, **options))


def _stage_a_file(path, clip: dict, shift: float = 1.0, **meta) -> str:
    """A stage-(a) checkpoint as training writes it: the classifier's
    trained tensors without its frozen CLIP, whose fingerprint is in
    ``meta.frozen_weights``."""
    classifier = _teacher(clip, type='IVLPClassifier')
    with torch.no_grad():
        for name, param in classifier.named_parameters():
            if param.requires_grad:
                param.add_(shift)
    meta = dict(dict(epoch=2, iter=20, frozen_weights=frozen_weights_record(
        classifier), dataset_meta=dict(classes=CLASSES[:2])), **meta)
    torch.save(dict(state_dict=classifier.state_dict(), meta=meta), path)
    return str(path)


@pytest.fixture
def stage_a(tmp_path, clip_files) -> str:
    return _stage_a_file(tmp_path / 'stage_a.pth', clip_files[0])


def _distiller(student_clip, teacher_clip, checkpoint, **options):
    if checkpoint is False:  # no teacher
        teacher = None
        options['projector'] = dict(type='FeatureProjector', out_channels=48)
    else:
        teacher = dict(clip=teacher_clip, checkpoint=checkpoint, **PROMPTS)
    return MODELS.build(
        dict(type='PromptKDDistiller',
             student=dict(clip=student_clip, vision_prompt_depth=1),
             teacher=teacher, **options))


# 1. The frozen CLIP a stage-(a) file was trained on.
@pytest.mark.parametrize('kind', ['PromptedCLIP', 'IVLPClassifier'])
def test_stage_a_prompts_on_other_clip_weights_are_refused(
        stage_a, clip_files, kind):
    with pytest.raises(CheckpointMismatchError,
                       match='stage_a.pth was trained on other frozen weights'
                       r'.*SHA-256 [0-9a-f]{16}.*with [0-9a-f]{16}'):
        _teacher(clip_files[1], type=kind, checkpoint=stage_a)


@pytest.mark.parametrize('kind', ['PromptedCLIP', 'IVLPClassifier'])
def test_stage_a_prompts_on_their_own_clip_weights_works(
        stage_a, clip_files, kind):
    teacher = _teacher(clip_files[0], type=kind, checkpoint=stage_a)
    record = teacher_record(teacher)
    assert record['trained_prompts'] is True
    assert record['checkpoint'] == stage_a
    assert record['iter'] == 20 and record['classes'] == CLASSES[:2]
    frozen = frozen_weights_record(teacher)  # the CLIP: prompts train
    assert record['frozen_sha256'] == frozen['sha256']
    assert record['frozen_sha256'] == json.loads(
        json.dumps(load_checkpoint_file(stage_a)['meta']))['frozen_weights'][
            'sha256']


# 2. Initial or zero prompts are not trained prompts.
def test_prompts_saved_before_the_first_step_are_untrained(
        tmp_path, tiny_clip_cfg, clip_files):
    path = _stage_a_file(tmp_path / 'initial.pth', clip_files[0],
                         shift=0.0, epoch=0, iter=0)
    model = _distiller(tiny_clip_cfg, clip_files[0], path)
    assert teacher_record(model.teacher)['trained_prompts'] is False
    with pytest.raises(UntrainedTeacherError,
                       match=r'initial.pth was saved before the first '
                       r'optimizer step \(meta.iter = 0\)'):
        model.prepare_text_features(CLASSES, for_training=True)


def test_all_zero_prompts_are_untrained(tmp_path, tiny_clip_cfg,
                                        tiny_large_clip_cfg):
    path = tmp_path / 'zero.pth'
    classifier = _teacher(tiny_large_clip_cfg, type='IVLPClassifier')
    state = {k: torch.zeros_like(v) if 'ctx' in k else v
             for k, v in classifier.state_dict().items()}
    torch.save(state, path)
    model = _distiller(tiny_clip_cfg, tiny_large_clip_cfg, str(path))
    with pytest.raises(UntrainedTeacherError,
                       match='zero.pth holds prompt tensors that are all '
                       'zero'):
        model.teacher_logits(torch.randn(2, 3, 32, 32), torch.randn(3, 48))


# 3. A cache recorded from an untrained teacher.
def test_a_cache_of_an_untrained_teacher_needs_the_opt_in(
        tiny_clip_cfg, tiny_large_clip_cfg):
    recorded = teacher_record(_teacher(tiny_large_clip_cfg))
    assert recorded['trained_prompts'] is False
    features = torch.nn.functional.normalize(torch.randn(3, 48), dim=-1)
    model = _distiller(tiny_clip_cfg, None, False)
    with pytest.raises(UntrainedTeacherError,
                       match=r'the teacher cache /c was recorded from a '
                       'teacher whose prompts were never trained'):
        model.use_cached_text_features(CLASSES, features, source='the '
                                       'teacher cache /c', teacher=recorded)
    model = _distiller(tiny_clip_cfg, None, False,
                       allow_untrained_teacher=True)
    model.use_cached_text_features(CLASSES, features, source='the teacher '
                                   'cache /c', teacher=recorded)
    assert model.text_features_teacher['sha256'] == recorded['sha256']


# 4. Stored text features of another teacher.
@pytest.fixture
def two_teachers(tmp_path, tiny_clip_cfg, clip_files):
    """Distillers A and B: the same CLIP, other stage-(a) prompts."""
    a = _stage_a_file(tmp_path / 'a.pth', clip_files[0], shift=1.0)
    b = _stage_a_file(tmp_path / 'b.pth', clip_files[0], shift=2.0)
    return [_distiller(tiny_clip_cfg, clip_files[0], path)
            for path in (a, b)]


def test_load_from_a_checkpoint_of_another_teacher_is_refused(two_teachers):
    a, b = two_teachers
    a.prepare_text_features(CLASSES, for_training=True)
    b.load_state_dict(a.state_dict())
    refused = dict(match=r'stored text features come from the teacher'
                   r' .*a.pth.*this model\'s teacher is .*b.pth')
    # Training, or classes of teacher B beside the student of teacher A.
    with pytest.raises(CheckpointMismatchError, **refused):
        b.prepare_text_features(CLASSES, for_training=True)
    with pytest.raises(CheckpointMismatchError, **refused):
        b.prepare_text_features(['cat', 'dog'], for_training=False)
    with pytest.raises(CheckpointMismatchError, **refused):
        b.add_classes(['cat'])
    # Evaluating the stored classes needs no teacher: their features are
    # the ones the student learned with.
    b.prepare_text_features(CLASSES, for_training=False)


def test_an_untrained_teacher_allowed_on_purpose_is_only_logged(
        tiny_clip_cfg, clip_files, log_messages):
    """Random prompts on purpose (a dry run) have no identity to keep."""
    a, b = (_distiller(tiny_clip_cfg, clip_files[0], None,
                       allow_untrained_teacher=True) for _ in range(2))
    a.prepare_text_features(CLASSES, for_training=True)
    b.load_state_dict(a.state_dict())
    b.prepare_text_features(CLASSES, for_training=True)
    assert any('allow_untrained_teacher=True' in m for m in log_messages)


def test_open_vocabulary_export_of_another_teacher_is_refused(
        two_teachers, tmp_path):
    a, b = two_teachers
    a.prepare_text_features(CLASSES, for_training=True)
    b.load_state_dict(a.state_dict())
    cfg = dict(type='PromptKDDistiller', student=dict(), teacher=dict())
    with pytest.raises(CheckpointMismatchError,
                       match='stored text features come from the teacher'):
        export_student(b, cfg, str(tmp_path / 'student.pth'),
                       with_text_encoder=True)
    assert not (tmp_path / 'student.pth').exists()


# 5. Training checkpoints and exports keep the teacher's record.
def test_export_without_the_teacher_keeps_the_checkpoints_teacher(
        two_teachers, tiny_clip_cfg, tmp_path):
    a = two_teachers[0]
    a.prepare_text_features(CLASSES, for_training=True)
    expected = teacher_record(a.teacher)
    student = _distiller(tiny_clip_cfg, None, False)
    student.load_state_dict(a.state_dict())
    cfg = dict(type='PromptKDDistiller', student=dict(clip=tiny_clip_cfg,
                                                      vision_prompt_depth=1),
               teacher=None)
    export_student(student, cfg, str(tmp_path / 's.pth'))
    meta = load_checkpoint_file(str(tmp_path / 's.pth'))['meta']
    assert meta['teacher'] == json.loads(json.dumps(expected))
    assert meta['teacher']['checkpoint'].endswith('a.pth')
    assert meta['teacher']['frozen_sha256'] == frozen_weights_record(
        a.teacher.clip)['sha256']


# 6. A teacher trained on other classes: logged and recorded, not refused.
def test_a_teacher_of_other_classes_is_logged_and_recorded_and_allows(
        tmp_path, tiny_clip_cfg, clip_files, log_messages):
    path = _stage_a_file(tmp_path / 'imagenet.pth', clip_files[0],
                         dataset_meta=dict(classes=['goldfish', 'tench']))
    model = _distiller(tiny_clip_cfg, clip_files[0], path)
    model.prepare_text_features(CLASSES, for_training=True)
    assert any('was trained on 2 classes' in m and 'none of' in m
               and 'goldfish' in m for m in log_messages), log_messages
    assert model.text_features_teacher['classes'] == ['goldfish', 'tench']
