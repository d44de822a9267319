"""TeacherStudentAgreement: values by hand, and from a distiller."""
import math

import pytest
import torch
from mmpretrain.structures import DataSample

from mmpromptkd.registry import METRICS, MODELS


def _sample(student, teacher):
    sample = DataSample().set_pred_score(torch.tensor(student))
    if teacher is not None:
        sample.set_field(torch.tensor(teacher), 'teacher_score')
    return sample


def test_values_by_hand():
    metric = METRICS.build(dict(type='TeacherStudentAgreement'))
    metric.dataset_meta = {}
    metric.process(None, [
        _sample([0.5, 0.5, 0.0], [0.5, 0.5, 0.0]),  # agree, KL 0
        _sample([0.25, 0.75, 0.0], [0.5, 0.25, 0.25]),  # disagree
    ])
    out = metric.evaluate(2)
    # KL of the second: 0.5 ln 2 + 0.25 ln(1/3) + 0.25 ln(0.25/1e-38).
    kl2 = (0.5 * math.log(0.5 / 0.25) + 0.25 * math.log(0.25 / 0.75) +
           0.25 * (math.log(0.25) - math.log(1e-38)))
    assert out['agreement/top1'] == 50.0
    assert out['agreement/kl'] == pytest.approx(kl2 / 2, rel=1e-5)


def test_missing_teacher_scores_say_what_to_set():
    metric = METRICS.build(dict(type='TeacherStudentAgreement'))
    with pytest.raises(ValueError, match='model.predict_teacher=True'):
        metric.process(None, [_sample([1.0, 0.0], None)])


def test_distiller_attaches_teacher_scores(tiny_clip_cfg,
                                           tiny_large_clip_cfg):
    model = MODELS.build(
        dict(
            type='PromptKDDistiller',
            allow_untrained_teacher=True,
            student=dict(clip=tiny_clip_cfg, vision_prompt_depth=1),
            teacher=dict(clip=tiny_large_clip_cfg, vision_prompt_depth=1,
                         text_prompt_depth=1),
            predict_teacher=True))
    model.prepare_text_features(['a', 'b', 'c'], for_training=True)
    model.eval()
    images = torch.randn(3, 3, 32, 32)
    samples = model.predict(images)
    teacher = model.teacher_logits(images, model.text_features).softmax(-1)
    for sample, expected in zip(samples, teacher):
        torch.testing.assert_close(sample.teacher_score, expected)
    metric = METRICS.build(dict(type='TeacherStudentAgreement'))
    metric.process(None, samples)
    agree = (model.student_logits(images).argmax(-1) ==
             teacher.argmax(-1)).float().mean().item() * 100
    assert metric.compute_metrics(metric.results)['top1'] == \
        pytest.approx(agree)
    model.predict_teacher = False
    assert 'teacher_score' not in model.predict(images)[0]
