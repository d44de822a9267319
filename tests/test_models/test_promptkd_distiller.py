"""PromptKDDistiller: logits, loss, stored text features, export."""
import copy
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample

import mmpromptkd  # noqa: F401
from mmpromptkd.registry import MODELS
from tool_scripts import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLASSES = ['red circle', 'blue_square', 'green star', 'pink heart', 'cat']


@pytest.fixture
def distiller_cfg(tiny_clip_cfg, tiny_large_clip_cfg):
    return dict(
        type='PromptKDDistiller',
        allow_untrained_teacher=True,
        student=dict(clip=tiny_clip_cfg, vision_prompt_depth=2),
        teacher=dict(
            clip=tiny_large_clip_cfg,
            vision_prompt_depth=2,
            text_prompt_depth=2),
        distill_loss=dict(type='KLLogitLoss', loss_weight=1000.0, tau=2.0))


@pytest.fixture
def distiller(distiller_cfg):
    model = MODELS.build(distiller_cfg)
    model.prepare_text_features(CLASSES, for_training=True)
    return model


class _NoLabels:
    """A data sample that fails if anything reads it."""

    def __getattr__(self, name):
        raise AssertionError(f'distillation read data_samples.{name}')


class TestPromptKDDistiller:

    def test_text_features_stored_once(self, distiller):
        expected = F.normalize(distiller.teacher.encode_text(CLASSES), dim=-1)
        torch.testing.assert_close(distiller.text_features, expected)
        assert distiller.text_features.shape == (5, 48)
        assert distiller.class_names == tuple(CLASSES)
        # Preparing again for the same classes does not recompute.
        distiller.text_features.add_(1.0)
        distiller.prepare_text_features(CLASSES, for_training=True)
        torch.testing.assert_close(distiller.text_features, expected + 1.0)

    def test_loss_matches_spec(self, distiller):
        images = torch.randn(4, 3, 32, 32)
        distiller.train()
        loss = distiller(images, [_NoLabels()] * 4, mode='loss')['loss_kd']

        teacher, student = distiller.teacher, distiller.student
        text = F.normalize(teacher.encode_text(CLASSES), dim=-1)
        v_t = F.normalize(teacher.encode_image(images), dim=-1)
        logits_t = teacher.clip.logit_scale.exp() * v_t @ text.t()
        f = student.encode_image(images)
        s = F.normalize(distiller.projector(f), dim=-1)
        logits_s = student.clip.logit_scale.exp() * s @ text.t()
        tau, weight = 2.0, 1000.0
        p_t = (logits_t / tau).softmax(-1)
        kl = p_t * (p_t.log() - (logits_s / tau).log_softmax(-1))
        expected = weight * tau**2 * kl.sum() / kl.numel()
        torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)

    def test_only_prompts_and_projector_train(self, distiller):
        trainable = set(distiller.trainable_parameters())
        assert trainable == {
            'student.vision_ctx', 'student.vision_deep_prompts.0',
            'projector.fc1.weight', 'projector.fc1.bias',
            'projector.bn.weight', 'projector.bn.bias', 'projector.fc2.weight',
            'projector.fc2.bias'
        }
        distiller.train()
        assert not distiller.teacher.training
        distiller(torch.randn(4, 3, 32, 32), mode='loss')['loss_kd'].backward()
        for name, param in distiller.named_parameters():
            assert (param.grad is not None) == (name in trainable), name
        assert all(p.grad is None for p in distiller.teacher.parameters())

    def test_teacher_not_in_checkpoint(self, distiller):
        keys = distiller.state_dict().keys()
        assert not any('teacher' in k for k in keys)
        assert 'text_features' in keys
        assert not any(k.startswith('student.clip.transformer') for k in keys)
        names = distiller.state_dict()['class_names_utf8']
        assert names.dtype == torch.uint8
        assert bytes(names.tolist()).decode() == (
            '["red circle", "blue_square", "green star", "pink heart", '
            '"cat"]')

    def test_predict(self, distiller):
        distiller.eval()
        images = torch.randn(3, 3, 32, 32)
        samples = [DataSample().set_gt_label(i) for i in range(3)]
        out = distiller(images, samples, mode='predict')
        logits = distiller(images, mode='tensor')
        for i, sample in enumerate(out):
            assert sample.pred_score.shape == (5, )
            torch.testing.assert_close(sample.pred_score,
                                       logits[i].softmax(-1))
            assert sample.pred_label.item() == logits[i].argmax().item()
            assert sample.gt_label.item() == i

    def test_exported_student_alone(self, distiller, distiller_cfg):
        distiller.eval()
        state = copy.deepcopy(distiller.state_dict())
        cfg = dict(
            distiller_cfg,
            teacher=None,
            projector=dict(type='FeatureProjector', out_channels=48))
        alone = MODELS.build(cfg).eval()
        alone.load_state_dict(state)
        assert alone.teacher is None
        assert alone.class_names == tuple(CLASSES)
        images = torch.randn(2, 3, 32, 32)
        torch.testing.assert_close(
            alone(images, mode='tensor'), distiller(images, mode='tensor'))
        # Same classes: no teacher needed.
        alone.prepare_text_features(CLASSES, for_training=False)
        with pytest.raises(ValueError, match='Give a teacher'):
            alone.prepare_text_features(CLASSES[:4], for_training=False)
        with pytest.raises(RuntimeError, match='needs a teacher'):
            alone(images, mode='loss')

    def test_class_mismatch_before_training(self, distiller):
        with pytest.raises(ValueError,
                           match='label 1: stored "blue_square", given "dog"'):
            distiller.prepare_text_features(
                ['red circle', 'dog', 'green star', 'pink heart', 'cat'],
                for_training=True)
        with pytest.raises(ValueError, match='5 classes but .* has 4'):
            distiller.prepare_text_features(CLASSES[:4], for_training=True)

    def test_other_classes_for_evaluation_only(self, distiller):
        stored = distiller.text_features.clone()
        distiller.prepare_text_features(['dog', 'cat'], for_training=False)
        logits = distiller(torch.randn(2, 3, 32, 32), mode='tensor')
        assert logits.shape == (2, 2)
        torch.testing.assert_close(distiller.text_features, stored)
        assert 'text_features' in distiller.state_dict()
        distiller.prepare_text_features(CLASSES, for_training=False)
        assert distiller(torch.randn(2, 3, 32, 32), mode='tensor').shape == \
            (2, 5)

    def test_unprepared(self, distiller_cfg):
        model = MODELS.build(distiller_cfg)
        with pytest.raises(RuntimeError, match='PromptKDTextFeaturesHook'):
            model(torch.randn(2, 3, 32, 32), mode='loss')

    def test_extract_feat_stages(self, distiller):
        """What FLOP counters count: an inference, or a training forward."""
        distiller.eval()
        images = torch.randn(3, 3, 32, 32)
        student = F.normalize(
            distiller.projector(distiller.student.encode_image(images)),
            dim=-1)
        teacher = F.normalize(
            distiller.teacher.encode_image(images), dim=-1)
        torch.testing.assert_close(distiller.extract_feat(images), student)
        got_teacher, got_student = distiller.extract_feat(images, 'distill')
        torch.testing.assert_close(got_teacher, teacher)
        torch.testing.assert_close(got_student, student)
        with pytest.raises(ValueError, match="'student' or 'distill'"):
            distiller.extract_feat(images, 'neck')

    def test_text_features_hook_leaves_other_models_alone(self):
        from types import SimpleNamespace

        from mmpromptkd.engine.hooks import PromptKDTextFeaturesHook
        logged = []
        runner = SimpleNamespace(
            model=torch.nn.Linear(2, 2),
            train_dataloader=None,  # never read
            logger=SimpleNamespace(info=logged.append))
        PromptKDTextFeaturesHook().before_train(runner)
        assert logged == ['PromptKDTextFeaturesHook: Linear takes no class '
                          'names; nothing to prepare']

    def test_projector_dimension_checked(self, distiller_cfg):
        with pytest.raises(ValueError, match='out_channels=10'):
            MODELS.build(
                dict(
                    distiller_cfg,
                    projector=dict(type='FeatureProjector', out_channels=10)))
        with pytest.raises(ValueError, match='out_channels'):
            MODELS.build(dict(distiller_cfg, teacher=None))


def official_student_state(distiller):
    """Lay out a distiller's student in the reference's key names."""
    student, proj = distiller.student, distiller.projector
    state = {
        'image_encoder.VPT': student.vision_ctx.data,
        'logit_scale': student.clip.logit_scale.data
    }
    for i, prompt in enumerate(student.vision_deep_prompts, start=1):
        state[f'image_encoder.transformer.resblocks.{i}.VPT_shallow'] = \
            prompt.data
    for key, value in student.clip.visual.state_dict().items():
        state[f'image_encoder.{key}'] = value
    for idx, module in (('0', proj.fc1), ('3', proj.fc2)):
        state[f'VPT_image_trans.conv1.{idx}.weight'] = \
            module.weight.data[:, :, None, None]
        state[f'VPT_image_trans.conv1.{idx}.bias'] = module.bias.data
    for key, value in proj.bn.state_dict().items():
        state[f'VPT_image_trans.conv1.1.{key}'] = value
    return {'state_dict': state, 'epoch': 20}


def test_official_student_round_trip(distiller, distiller_cfg, tmp_path):
    with torch.no_grad():
        for param in distiller.trainable_parameters().values():
            param.normal_()
        distiller.projector.bn.running_mean.normal_()
    torch.save(official_student_state(distiller), tmp_path / 'student.tar')
    tool = load_tool('model_converters/promptkd_official_to_mmpromptkd.py')
    tool.main([
        'student',
        str(tmp_path / 'student.tar'),
        str(tmp_path / 'converted.pth'), '--quiet'
    ])
    converted = torch.load(tmp_path / 'converted.pth')['state_dict']
    fresh = MODELS.build(distiller_cfg)
    result = fresh.load_state_dict(converted, strict=False)
    # Only the stored features (with their names and teacher record) are
    # absent: the teacher computes them.
    assert sorted(result.missing_keys) == [
        'class_names_utf8', 'text_features', 'text_provenance_utf8'
    ]
    assert result.unexpected_keys == []
    # Same (random) teacher, so that its text features are the same.
    fresh.teacher.load_state_dict(distiller.teacher.state_dict())
    fresh.prepare_text_features(CLASSES, for_training=True)
    distiller.eval(), fresh.eval()
    images = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(
        fresh(images, mode='tensor'), distiller(images, mode='tensor'))


def test_export_and_load_alone(distiller, distiller_cfg, tmp_path):
    from mmpromptkd.apis import export_student, load_exported_student
    distiller.eval()
    export_student(distiller, distiller_cfg, str(tmp_path / 'student.pth'))
    with pytest.raises(FileExistsError):
        export_student(distiller, distiller_cfg, str(tmp_path / 'student.pth'))
    alone = load_exported_student(str(tmp_path / 'student.pth'))
    assert alone.teacher is None and alone.class_names == tuple(CLASSES)
    images = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(
        alone(images, mode='tensor'), distiller(images, mode='tensor'))
    torch.save({'state_dict': {}}, tmp_path / 'other.pth')
    with pytest.raises(ValueError, match='not an exported'):
        load_exported_student(str(tmp_path / 'other.pth'))


def test_an_export_names_one_class_list(distiller, distiller_cfg, tmp_path):
    """mmpretrain's inferencer reads dataset_meta, ours the stored rows:
    a file in which they differ is refused."""
    from mmpromptkd.apis import export_student, load_exported_student
    from mmpromptkd.utils import load_checkpoint_file
    path = str(tmp_path / 'student.pth')
    export_student(distiller, distiller_cfg, path)
    payload = load_checkpoint_file(path)
    assert payload['meta']['dataset_meta']['classes'] == list(CLASSES)
    payload['meta']['dataset_meta']['classes'] = list(reversed(CLASSES))
    torch.save(payload, tmp_path / 'edited.pth')
    with pytest.raises(ValueError, match='dataset_meta.classes'):
        load_exported_student(str(tmp_path / 'edited.pth'))


def test_open_vocabulary_export(distiller, distiller_cfg, tmp_path):
    """The teacher's text tower alone, exported with the student, gives
    the teacher's text features bit for bit, for stored and new names."""
    from mmpromptkd.apis import export_student, load_exported_student
    distiller.eval()
    path = str(tmp_path / 'open.pth')
    export_student(distiller, distiller_cfg, path, with_text_encoder=True)
    plain = str(tmp_path / 'plain.pth')
    export_student(distiller, distiller_cfg, plain)
    state = torch.load(path)['state_dict']
    assert any(k.startswith('text_encoder.clip.transformer.') for k in state)
    assert 'text_encoder.text_ctx' in state
    assert not any(k.startswith('text_encoder.clip.visual') for k in state)
    assert not any(k.startswith('text_encoder.vision') for k in state)

    alone = load_exported_student(path)
    assert alone.teacher is None and alone.can_encode_text
    assert not load_exported_student(plain).can_encode_text
    assert torch.equal(alone.text_features, distiller.text_features)
    assert torch.equal(
        alone.compute_text_features(CLASSES), distiller.text_features)
    new = ['purple moon', 'orange kite']
    expected = distiller.compute_text_features(new)
    assert torch.equal(alone.compute_text_features(new), expected)

    alone.add_classes(new)
    assert alone.class_names == tuple(CLASSES + new)
    assert torch.equal(alone.text_features[:5], distiller.text_features)
    assert torch.equal(alone.text_features[5:], expected)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits = alone(images, mode='tensor')
        torch.testing.assert_close(logits[:, :5],
                                   distiller(images, mode='tensor'))
    alone.set_class_names(new)
    assert alone.class_names == tuple(new)
    assert torch.equal(alone.text_features, expected)
    # Re-exported, it stays open-vocabulary with its new classes.
    again = str(tmp_path / 'again.pth')
    from mmpromptkd.utils import load_checkpoint_file
    export_student(alone, load_checkpoint_file(path)['meta']['model'], again)
    reloaded = load_exported_student(again)
    assert reloaded.class_names == tuple(new) and reloaded.can_encode_text


def test_class_list_changes(distiller, distiller_cfg, tmp_path):
    from mmpromptkd.apis import export_student, load_exported_student
    path = str(tmp_path / 'plain.pth')
    export_student(distiller.eval(), distiller_cfg, path)
    alone = load_exported_student(path)
    # Stored classes: their rows, no text encoder needed.
    alone.select_classes([CLASSES[3], CLASSES[1]])
    assert alone.class_names == (CLASSES[3], CLASSES[1])
    assert torch.equal(alone.text_features,
                       distiller.text_features[[3, 1]])
    with pytest.raises(ValueError, match=r"\['zebra'\] are not among"):
        alone.select_classes([CLASSES[3], 'zebra'])
    with pytest.raises(RuntimeError, match='teacher or its text encoder'):
        alone.set_class_names(['zebra'])
    for names, message in (([], 'empty'), (['a', 'a'], 'more than once'),
                           (['', 'b'], 'non-empty strings'),
                           (['word ' * 80], 'context')):
        with pytest.raises(ValueError, match=message):
            distiller.set_class_names(names)
    with pytest.raises(ValueError, match='stored classes already'):
        distiller.add_classes([CLASSES[0]])


def test_release_teacher_text_tower(distiller_cfg, tmp_path):
    """The teacher's text tower goes once the features are stored; what
    the student learns from does not change."""
    from mmpromptkd.apis import export_student
    kept = MODELS.build(distiller_cfg)
    torch.manual_seed(0)
    released = MODELS.build(
        dict(distiller_cfg, release_teacher_text_tower=True))
    released.student.load_state_dict(kept.student.state_dict())
    released.projector.load_state_dict(kept.projector.state_dict())
    released.teacher.load_state_dict(kept.teacher.state_dict())
    before = sum(p.numel() for p in released.teacher.parameters())
    for model in (kept, released):
        model.prepare_text_features(CLASSES, for_training=True)
    torch.testing.assert_close(released.text_features, kept.text_features,
                               rtol=0, atol=0)
    after = sum(p.numel() for p in released.teacher.parameters())
    text = sum(p.numel() for n, p in kept.teacher.named_parameters()
               if not n.startswith('clip.visual') and 'vision' not in n
               and n != 'clip.logit_scale')
    assert before - after == text > 0
    assert not hasattr(released.teacher.clip, 'token_embedding')
    images = torch.randn(4, 3, 32, 32)
    kept.train(), released.train()
    torch.testing.assert_close(released.loss(images)['loss_kd'],
                               kept.loss(images)['loss_kd'])
    # Same classes evaluate; other classes and an open-vocabulary export
    # say what was released.
    released.prepare_text_features(CLASSES, for_training=False)
    with pytest.raises(ValueError, match='release_teacher_text_tower=False'):
        released.prepare_text_features(['dog', 'cat'], for_training=False)
    with pytest.raises(RuntimeError, match='released'):
        released.teacher.encode_text(['dog'])
    with pytest.raises(ValueError, match='release_teacher_text_tower=True'):
        export_student(released, dict(distiller_cfg), str(tmp_path / 's.pth'),
                       with_text_encoder=True)


class TestCompile:
    """compile=True: the same logits, losses and gradients as eager."""

    @staticmethod
    def _build(cfg, **kwargs):
        torch.manual_seed(0)
        model = MODELS.build(dict(copy.deepcopy(cfg), **kwargs))
        model.prepare_text_features(CLASSES, for_training=True)
        return model

    def test_compile_must_be_a_bool_or_options(self, distiller_cfg):
        with pytest.raises(TypeError,
                           match='compile must be a bool or a dict'):
            self._build(distiller_cfg, compile='yes')

    def test_compile_keeps_the_checkpoint_keys(self, distiller_cfg):
        eager = self._build(distiller_cfg)
        compiled = self._build(distiller_cfg, compile=True)
        assert eager.state_dict().keys() == compiled.state_dict().keys()

    @pytest.mark.slow
    def test_compiled_logits_losses_and_gradients_equal_eager(
            self, distiller_cfg):
        eager = self._build(distiller_cfg)
        compiled = self._build(distiller_cfg, compile=True)
        compiled.load_state_dict(eager.state_dict())
        images = torch.randn(
            4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        eager.eval()
        compiled.eval()
        with torch.no_grad():
            torch.testing.assert_close(
                compiled.student_logits(images),
                eager.student_logits(images),
                rtol=1e-5,
                atol=1e-5)
            torch.testing.assert_close(
                compiled.teacher_logits(images, compiled.text_features),
                eager.teacher_logits(images, eager.text_features),
                rtol=1e-5,
                atol=1e-5)
        eager.train()
        compiled.train()
        losses = [
            m(images, mode='loss')['loss_kd'] for m in (eager, compiled)
        ]
        for loss in losses:
            loss.backward()
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-5,
                                   atol=1e-5)
        # All gradients as one vector: the bias before the projector's
        # BatchNorm has a zero gradient up to rounding, so per-tensor
        # relative errors mean nothing there.
        grads = [
            torch.cat([
                p.grad.flatten()
                for p in model.trainable_parameters().values()
            ]) for model in (eager, compiled)
        ]
        assert (grads[1] - grads[0]).norm() <= 1e-5 * grads[0].norm()


def test_a_teacher_checkpoint_is_named_as_one(distiller):
    from mmpromptkd.utils.state_dict_check import CheckpointMismatchError
    state = {'prompted_clip.vision_ctx': torch.zeros(4, 64)}
    with pytest.raises(CheckpointMismatchError,
                       match='stage-\\(a\\) teacher checkpoint.*'
                       'model.teacher.checkpoint=PATH'):
        distiller.load_state_dict(state, strict=False)
