"""A teacher ensemble: its formulas, against an independent computation,
and its properties."""

import numpy as np
import pytest
import torch

from mmpromptkd.models.clip import build_clip
from mmpromptkd.models.distillers.teacher_ensemble import \
    combine_teacher_logits
from mmpromptkd.models.utils.teacher_provenance import (
    UntrainedTeacherError, teacher_record)
from mmpromptkd.registry import MODELS

CLASSES = ['red circle', 'blue square', 'green star']


def _mixture(logits, taus, weights=None, confidence=None, ctau=1.0):
    """p = sum_m w_m softmax(z_m / tau_m), in float64 numpy."""
    probs = []
    for z, t in zip(logits, taus):
        e = np.exp(z / t - (z / t).max(-1, keepdims=True))
        probs.append(e / e.sum(-1, keepdims=True))
    probs = np.stack(probs)  # (M, B, C)
    if confidence is None:
        w = np.asarray(weights, dtype=np.float64)[:, None]
    else:
        if confidence == 'max_prob':
            score = probs.max(-1)
        else:
            score = (probs * np.log(probs)).sum(-1)
        e = np.exp(score / ctau - (score / ctau).max(0, keepdims=True))
        w = e / e.sum(0, keepdims=True)
    return (w[..., None] * probs).sum(0)


@pytest.mark.parametrize('case', [
    dict(weights=[0.2, 0.5, 0.3]),
    dict(weights=[1 / 3] * 3),
    dict(weights=[0.0, 1.0, 0.0]),
    dict(confidence='max_prob', ctau=0.5),
    dict(confidence='neg_entropy', ctau=2.0),
])
def test_the_target_is_the_weighted_mixture(case):
    rng = np.random.default_rng(0)
    logits = [rng.normal(0, s, (6, 5)) for s in (1.0, 4.0, 10.0)]
    taus, tau = [1.0, 2.0, 0.5], 1.5
    out = combine_teacher_logits(
        [torch.tensor(z, dtype=torch.float32) for z in logits], taus, tau,
        case.get('weights'), case.get('confidence'), case.get('ctau', 1.0))
    expected = _mixture(logits, taus, case.get('weights'),
                        case.get('confidence'), case.get('ctau', 1.0))
    got = torch.softmax(out.double() / tau, dim=-1).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-6)


def test_a_single_member_is_returned_unchanged():
    z = torch.randn(4, 3)
    assert combine_teacher_logits([z], [2.0], 1.0, [1.0]) is z


@pytest.fixture
def clip_file(tmp_path, tiny_large_clip_cfg) -> dict:
    """A weight file: members built from it are the same teacher."""
    torch.manual_seed(0)
    path = tmp_path / 'teacher_clip.pth'
    torch.save(build_clip(tiny_large_clip_cfg).state_dict(), path)
    return dict(tiny_large_clip_cfg, checkpoint=str(path))


def _distiller(student_clip, teacher):
    torch.manual_seed(1)
    model = MODELS.build(
        dict(type='PromptKDDistiller',
             student=dict(clip=student_clip, vision_prompt_depth=1),
             teacher=teacher))
    model.prepare_text_features(CLASSES, for_training=True)
    return model


def _zero_shot(clip):
    return dict(type='PromptedCLIP', clip=clip)


def test_an_ensemble_of_one_is_the_teacher_bit_for_bit(tiny_clip_cfg,
                                                       clip_file):
    images = torch.randn(4, 3, 32, 32)
    single = _distiller(tiny_clip_cfg, _zero_shot(clip_file))
    one = _distiller(tiny_clip_cfg, dict(
        type='TeacherEnsemble', members=[dict(teacher=_zero_shot(clip_file))]))
    assert torch.equal(single.loss(images)['loss_kd'],
                       one.loss(images)['loss_kd'])
    assert torch.equal(single.text_features, one.text_features)


@pytest.mark.parametrize('options', [
    dict(),
    dict(weighting='fixed', weights=[0.3, 0.7]),
    dict(weighting='confidence', confidence='neg_entropy'),
    dict(weighting='confidence', confidence='max_prob', confidence_tau=0.1),
])
def test_two_identical_members_give_the_single_teachers_loss(
        tiny_clip_cfg, clip_file, options):
    options = dict(options)
    weights = options.pop('weights', [None, None])
    images = torch.randn(4, 3, 32, 32)
    single = _distiller(tiny_clip_cfg, _zero_shot(clip_file))
    members = [dict(teacher=_zero_shot(clip_file)) for _ in weights]
    for member, weight in zip(members, weights):
        if weight is not None:
            member['weight'] = weight
    pair = _distiller(tiny_clip_cfg, dict(type='TeacherEnsemble',
                                          members=members, **options))
    torch.testing.assert_close(pair.loss(images)['loss_kd'],
                               single.loss(images)['loss_kd'],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('members, options, message', [
    ([0.5, 0.6], dict(weighting='fixed'), 'sum to 1'),
    ([-0.5, 1.5], dict(weighting='fixed'), '>= 0'),
    ([None, 1.0], dict(weighting='fixed'), 'needs a weight for every'),
    ([0.5, 0.5], dict(), "is for weighting='fixed'"),
    ([None, None], dict(weighting='vote'), 'weighting must be one of'),
    ([None, None], dict(text_member=2), 'text_member=2 is not one of'),
])
def test_bad_weights_are_refused_by_name(tiny_large_clip_cfg, members,
                                         options, message):
    specs = []
    for weight in members:
        spec = dict(teacher=_zero_shot(tiny_large_clip_cfg))
        if weight is not None:
            spec['weight'] = weight
        specs.append(spec)
    with pytest.raises(ValueError, match=message):
        MODELS.build(dict(type='TeacherEnsemble', members=specs, **options))


def test_an_untrained_member_is_refused_by_name_and_recorded(
        tiny_clip_cfg, tiny_large_clip_cfg):
    prompted = dict(type='PromptedCLIP', clip=tiny_large_clip_cfg,
                    vision_prompt_depth=1, text_prompt_depth=1)
    model = MODELS.build(
        dict(type='PromptKDDistiller',
             student=dict(clip=tiny_clip_cfg, vision_prompt_depth=1),
             teacher=dict(type='TeacherEnsemble', members=[
                 dict(teacher=_zero_shot(tiny_large_clip_cfg)),
                 dict(teacher=prompted)
             ])))
    with pytest.raises(UntrainedTeacherError,
                       match=r'members\[1\]: the teacher\'s 2 prompt'):
        model.prepare_text_features(CLASSES, for_training=True)
    record = teacher_record(model.teacher)
    assert record['trained_prompts'] is False
    assert [m['trained_prompts'] for m in record['members']] == [True, False]
    assert record['members'][0]['sha256'] == teacher_record(
        model.teacher.members[0])['sha256']


def test_an_ensemble_distilled_student_exports_loads_and_converts(
        tiny_clip_cfg, tiny_large_clip_cfg, clip_file, tmp_path):
    """The student of an ensemble is a student like any other; its export
    records every member."""
    pytest.importorskip('onnxruntime')
    from mmpromptkd.apis import export_student, load_exported_student
    from tool_scripts import load_tool
    cfg = dict(
        type='PromptKDDistiller',
        student=dict(clip=tiny_clip_cfg, vision_prompt_depth=1),
        teacher=dict(type='TeacherEnsemble', weighting='confidence',
                     members=[dict(teacher=_zero_shot(clip_file)),
                              dict(teacher=_zero_shot(tiny_large_clip_cfg),
                                   tau=2.0)]))
    model = MODELS.build(cfg)
    model.prepare_text_features(CLASSES, for_training=True)
    optimizer = torch.optim.SGD(model.trainable_parameters().values(), lr=0.1)
    model.loss(torch.randn(4, 3, 32, 32))['loss_kd'].backward()
    optimizer.step()
    model.eval()
    path = tmp_path / 'student.pth'
    export_student(model, cfg, str(path))
    meta = torch.load(path, weights_only=True)['meta']
    assert meta['teacher']['type'] == 'TeacherEnsemble'
    assert [m['sha256'] for m in meta['teacher']['members']] == [
        teacher_record(m)['sha256'] for m in model.teacher.members
    ]
    loaded = load_exported_student(str(path))
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.student_logits(images),
                                   model.student_logits(images))
    load_tool('deployment/pytorch2onnx.py').main(
        [str(path), str(tmp_path / 'student.onnx')])
    assert (tmp_path / 'student.onnx').is_file()


def test_members_encode_class_names_in_batches(tiny_large_clip_cfg,
                                               clip_file):
    """Any batch size gives the same member logits (memory stays bounded
    for large class lists)."""
    images = torch.randn(2, 3, 32, 32)
    members = [dict(teacher=_zero_shot(clip_file)),
               dict(teacher=_zero_shot(tiny_large_clip_cfg))]
    logits = []
    for batch_size in (1, 256):
        torch.manual_seed(0)
        ensemble = MODELS.build(dict(type='TeacherEnsemble', members=members,
                                     text_batch_size=batch_size)).eval()
        text = ensemble.encode_text(CLASSES, normalize=True).float()
        with torch.no_grad():
            logits.append(ensemble.member_logits(images, CLASSES, text))
    for one, whole in zip(*logits):
        torch.testing.assert_close(one, whole, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='text_batch_size must be >= 1'):
        MODELS.build(dict(type='TeacherEnsemble', members=members,
                          text_batch_size=0))
