"""A teacher whose prompts were never trained is never used silently."""
import pytest
import torch

from mmpromptkd.apis import export_student
from mmpromptkd.models.utils.teacher_provenance import (
    UntrainedTeacherError, teacher_record)
from mmpromptkd.models.utils import frozen_weights_record
from mmpromptkd.registry import MODELS
from mmpromptkd.utils import load_checkpoint_file

CLASSES = ['red circle', 'blue square', 'green star']


def _distiller(student_clip, teacher_clip, **options):
    teacher = dict(clip=teacher_clip, vision_prompt_depth=1,
                   text_prompt_depth=1)
    teacher.update(options.pop('teacher', {}))
    return MODELS.build(
        dict(type='PromptKDDistiller',
             student=dict(clip=student_clip, vision_prompt_depth=1),
             teacher=teacher, **options))


@pytest.fixture
def prompt_file(tmp_path, tiny_large_clip_cfg):
    """Prompts of a teacher "trained" elsewhere (perturbed, saved)."""
    teacher = MODELS.build(
        dict(type='PromptedCLIP', clip=tiny_large_clip_cfg,
             vision_prompt_depth=1, text_prompt_depth=1))
    with torch.no_grad():
        for param in teacher.prompt_parameters().values():
            param.add_(1.0)
    path = tmp_path / 'teacher.pth'
    torch.save(teacher.prompt_parameters(), path)
    return str(path)


def test_distilling_or_encoding_with_random_prompts_is_refused(
        tiny_clip_cfg, tiny_large_clip_cfg):
    model = _distiller(tiny_clip_cfg, tiny_large_clip_cfg)
    with pytest.raises(UntrainedTeacherError,
                       match=r'encoding class names needs a trained teacher.*'
                       r'2 prompt tensor\(s\).*model.teacher.checkpoint.*'
                       'model.allow_untrained_teacher=True'):
        model.prepare_text_features(CLASSES, for_training=True)
    with pytest.raises(UntrainedTeacherError, match='distillation needs'):
        model.teacher_logits(torch.randn(2, 3, 32, 32), torch.randn(3, 48))


def test_an_explicit_opt_in_allows_them(tiny_clip_cfg, tiny_large_clip_cfg):
    model = _distiller(tiny_clip_cfg, tiny_large_clip_cfg,
                       allow_untrained_teacher=True)
    model.prepare_text_features(CLASSES, for_training=True)
    loss = model.loss(torch.randn(2, 3, 32, 32), None)
    assert torch.isfinite(loss['loss_kd'])


def test_a_trained_or_promptless_teacher_needs_no_opt_in(
        tiny_clip_cfg, tiny_large_clip_cfg, prompt_file):
    trained = _distiller(tiny_clip_cfg, tiny_large_clip_cfg,
                         teacher=dict(checkpoint=prompt_file))
    trained.prepare_text_features(CLASSES, for_training=True)
    record = teacher_record(trained.teacher)
    assert record['checkpoint'] == prompt_file
    assert record['trained_prompts'] is True
    zero_shot = _distiller(tiny_clip_cfg, tiny_large_clip_cfg,
                           teacher=dict(vision_prompt_depth=0,
                                        text_prompt_depth=0))
    zero_shot.prepare_text_features(CLASSES, for_training=True)
    assert teacher_record(zero_shot.teacher)['trained_prompts'] is True


def test_export_refuses_random_text_prompts_and_records_the_teacher(
        tiny_clip_cfg, tiny_large_clip_cfg, prompt_file, tmp_path):
    cfg = dict(type='PromptKDDistiller',
               student=dict(clip=tiny_clip_cfg, vision_prompt_depth=1),
               teacher=dict(clip=tiny_large_clip_cfg, vision_prompt_depth=1,
                            text_prompt_depth=1),
               allow_untrained_teacher=True)
    model = MODELS.build(cfg)
    model.prepare_text_features(CLASSES, for_training=True)
    model.allow_untrained_teacher = False
    with pytest.raises(UntrainedTeacherError,
                       match=r'export_student\(with_text_encoder=True\)'):
        export_student(model, cfg, str(tmp_path / 'a.pth'),
                       with_text_encoder=True)
    assert not (tmp_path / 'a.pth').exists()
    cfg['teacher']['checkpoint'] = prompt_file
    del cfg['allow_untrained_teacher']
    model = MODELS.build(cfg)
    model.prepare_text_features(CLASSES, for_training=True)
    export_student(model, cfg, str(tmp_path / 'b.pth'),
                   with_text_encoder=True)
    meta = load_checkpoint_file(str(tmp_path / 'b.pth'))['meta']
    expected = teacher_record(model.teacher)
    assert meta['teacher']['sha256'] == expected['sha256']
    # Frozen in the distiller: the teacher's fingerprints cover all of it.
    assert expected['frozen_sha256'] == frozen_weights_record(
        model.teacher.clip)['sha256']
    assert expected['tensors'] == frozen_weights_record(
        model.teacher)['tensors']
    assert meta['teacher']['checkpoint'] == prompt_file
