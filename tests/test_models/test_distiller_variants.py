"""The paper's ablations and other students: what trains, what logits are."""
import pytest
import torch
import torch.nn.functional as F

import mmpromptkd  # noqa: F401
from mmpromptkd.registry import MODELS

CLASSES = ['red circle', 'blue square', 'green star', 'pink heart']


def build(tiny_clip_cfg, tiny_large_clip_cfg, student=None, **kwargs):
    cfg = dict(
        type='PromptKDDistiller',
        allow_untrained_teacher=True,
        student=dict(
            dict(clip=tiny_clip_cfg, vision_prompt_depth=2), **(student
                                                                or {})),
        teacher=dict(
            clip=tiny_large_clip_cfg,
            vision_prompt_depth=2,
            text_prompt_depth=2))
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    model.prepare_text_features(CLASSES, for_training=True)
    return model


def manual_kl(student, teacher, weight=1000.0):
    p = teacher.softmax(-1)
    kl = p * (p.log() - student.log_softmax(-1))
    return weight * kl.sum() / kl.numel()


def test_projector_only(tiny_clip_cfg, tiny_large_clip_cfg):
    model = build(
        tiny_clip_cfg,
        tiny_large_clip_cfg,
        student=dict(vision_prompt_depth=0))
    assert set(model.trainable_parameters()) == {
        f'projector.{m}.{p}'
        for m in ('fc1', 'bn', 'fc2')
        for p in ('weight', 'bias')
    }


def test_full_finetune(tiny_clip_cfg, tiny_large_clip_cfg):
    model = build(
        tiny_clip_cfg,
        tiny_large_clip_cfg,
        student=dict(vision_prompt_depth=0, freeze_clip=False))
    trainable = set(model.trainable_parameters())
    visual = {
        f'student.clip.visual.{n}'
        for n, _ in model.student.clip.visual.named_parameters()
    }
    assert visual <= trainable
    assert 'student.clip.logit_scale' not in trainable
    model.train()
    model(torch.randn(4, 3, 32, 32), mode='loss')['loss_kd'].backward()
    assert model.student.clip.visual.conv1.weight.grad.abs().sum() > 0


def test_without_shared_text_features(tiny_clip_cfg, tiny_large_clip_cfg):
    model = build(
        tiny_clip_cfg,
        tiny_large_clip_cfg,
        student=dict(text_prompt_depth=1),
        shared_text_features=False,
        projector=None)
    assert model.projector is None
    assert set(model.trainable_parameters()) == {
        'student.vision_ctx', 'student.vision_deep_prompts.0',
        'student.text_ctx'
    }
    images = torch.randn(3, 3, 32, 32)
    student = model.student
    image = F.normalize(student.encode_image(images), dim=-1)
    text = F.normalize(student.encode_text(CLASSES), dim=-1)
    own = student.clip.logit_scale.exp() * image @ text.t()
    torch.testing.assert_close(model(images, mode='tensor'), own)
    teacher = model.teacher_logits(images, model.text_features)
    model.train()
    torch.testing.assert_close(
        model(images, mode='loss')['loss_kd'],
        manual_kl(own, teacher),
        rtol=1e-5,
        atol=1e-6)
    with pytest.raises(ValueError, match='projector=None'):
        build(tiny_clip_cfg, tiny_large_clip_cfg, shared_text_features=False)


@pytest.mark.parametrize('mode', ['l1', 'mse'])
def test_feature_distillation(tiny_clip_cfg, tiny_large_clip_cfg, mode):
    model = build(
        tiny_clip_cfg,
        tiny_large_clip_cfg,
        distill_target='features',
        distill_loss=dict(
            type='FeatureDistillLoss', mode=mode, loss_weight=3.0))
    model.eval()  # fixed BatchNorm statistics for the hand computation
    images = torch.randn(4, 3, 32, 32)
    s = F.normalize(
        model.projector(model.student.encode_image(images)), dim=-1)
    t = F.normalize(model.teacher.encode_image(images), dim=-1)
    diff = s - t
    expected = 3.0 * (diff.abs() if mode == 'l1' else diff**2).mean()
    torch.testing.assert_close(model(images, mode='loss')['loss_kd'], expected)
    # Inference still classifies with the stored text features.
    assert model(images, mode='tensor').shape == (4, 4)


def test_backbone_student(tiny_large_clip_cfg):
    model = MODELS.build(
        dict(
            type='PromptKDDistiller',
            allow_untrained_teacher=True,
            student=dict(
                type='BackboneStudent',
                backbone=dict(type='ResNet', depth=18),
                image_size=32),
            teacher=dict(
                clip=tiny_large_clip_cfg,
                vision_prompt_depth=1,
                text_prompt_depth=1)))
    model.prepare_text_features(CLASSES, for_training=True)
    assert model.student.embed_dim == 512
    assert model.projector.fc1.in_features == 512
    assert model.projector.fc2.out_features == 48
    trainable = set(model.trainable_parameters())
    assert 'student.backbone.conv1.weight' in trainable
    model.eval()
    images = torch.randn(2, 3, 32, 32)
    features = model.student.backbone(images)[-1].mean(dim=(2, 3))
    s = F.normalize(model.projector(features), dim=-1)
    expected = 100.0 * s @ model.text_features.t()
    torch.testing.assert_close(
        model(images, mode='tensor'), expected, rtol=1e-4, atol=1e-4)


def test_subset_of_stored_classes_needs_no_teacher(tiny_clip_cfg,
                                                   tiny_large_clip_cfg):
    model = build(tiny_clip_cfg, tiny_large_clip_cfg).eval()
    images = torch.randn(2, 3, 32, 32)
    full = model(images, mode='tensor')
    object.__setattr__(model, '_teacher', None)
    model.prepare_text_features(['pink heart', 'blue square'],
                                for_training=False,
                                class_indices=[3, 1])
    torch.testing.assert_close(model(images, mode='tensor'), full[:, [3, 1]])
    with pytest.raises(ValueError, match='Give a teacher'):
        model.prepare_text_features(['pink heart', 'cat'],
                                    for_training=False,
                                    class_indices=[3, 0])


def test_bad_options(tiny_clip_cfg, tiny_large_clip_cfg):
    with pytest.raises(ValueError, match='distill_target'):
        build(tiny_clip_cfg, tiny_large_clip_cfg, distill_target='tokens')
    with pytest.raises(ValueError, match='FeatureDistillLoss: mode'):
        MODELS.build(dict(type='FeatureDistillLoss', mode='cos'))


def test_compile_reaches_every_image_path(tiny_clip_cfg, tiny_large_clip_cfg,
                                          monkeypatch):
    """With compile=True every path that encodes images goes through the
    compiled encoders: the projector-less student's logits, its features
    for FLOP counters, and the teacher's logits."""
    wrapped, called = [], []

    def fake_compile(fn, **options):
        wrapped.append(fn.__self__)

        def compiled(*args, **kwargs):
            called.append(fn.__self__)
            return fn(*args, **kwargs)

        return compiled

    monkeypatch.setattr(torch, 'compile', fake_compile)
    model = build(
        tiny_clip_cfg,
        tiny_large_clip_cfg,
        student=dict(text_prompt_depth=1),
        shared_text_features=False,
        projector=None,
        compile=True)
    images = torch.randn(2, 3, 32, 32)
    model(images, mode='tensor')
    model.extract_feat(images)
    assert called == [model.student, model.student]
    model.train()
    model(images, mode='loss')
    assert called[2:] == [model.teacher, model.student]
    assert wrapped == [model.student, model.teacher]
