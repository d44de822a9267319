"""Training checkpoints without frozen weights, bound to them by SHA-256."""
import copy
import hashlib
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import mmpromptkd  # noqa: F401
from mmpromptkd.engine.hooks import SafeCheckpointHook
from mmpromptkd.models.utils import (FROZEN_WEIGHTS_META,
                                     check_frozen_weights, frozen_parameters,
                                     frozen_weights_record)
from mmpromptkd.registry import MODELS
from mmpromptkd.utils.state_dict_check import CheckpointMismatchError

CLASSES = ['red circle', 'blue square', 'green star']


def _distiller_cfg(student_clip, teacher_clip):
    return dict(
        type='PromptKDDistiller',
        allow_untrained_teacher=True,
        student=dict(clip=student_clip, vision_prompt_depth=2),
        teacher=dict(clip=teacher_clip, vision_prompt_depth=2,
                     text_prompt_depth=2))


def _saved(model: nn.Module) -> dict:
    """A checkpoint as mmengine's Runner hands it to the checkpoint hook."""
    checkpoint = dict(meta={}, state_dict=copy.deepcopy(model.state_dict()))
    SafeCheckpointHook(interval=1).before_save_checkpoint(
        SimpleNamespace(model=model), checkpoint)
    return checkpoint


class TestRecord:

    def test_sha256_of_dtype_shape_and_bytes_in_name_order(self):
        model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
        model[0].requires_grad_(False)
        expected = hashlib.sha256()
        for t in (model[0].bias, model[0].weight):  # '0.bias' < '0.weight'
            expected.update(
                f'{t.dtype}{tuple(t.shape)};'.encode() +
                t.detach().numpy().tobytes())
        record = frozen_weights_record(model)
        assert record == dict(sha256=expected.hexdigest(), tensors=2,
                              elements=9)

    def test_one_changed_value_or_another_prefix(self):
        inner = nn.Linear(4, 4).requires_grad_(False)
        outer = nn.Module()
        outer.clip = copy.deepcopy(inner)
        # The same weights under a module prefix: the same fingerprint.
        assert frozen_weights_record(outer) == frozen_weights_record(inner)
        outer.clip.weight.data[0, 0] += 1e-6
        assert frozen_weights_record(outer)['sha256'] != \
            frozen_weights_record(inner)['sha256']


class TestDistillerCheckpoint:

    @pytest.fixture
    def model(self, tiny_clip_cfg, tiny_large_clip_cfg):
        model = MODELS.build(_distiller_cfg(tiny_clip_cfg,
                                            tiny_large_clip_cfg))
        model.prepare_text_features(CLASSES, for_training=True)
        with torch.no_grad():
            for param in model.trainable_parameters().values():
                param.add_(torch.randn_like(param))
        return model

    def test_holds_what_training_changed(self, model):
        checkpoint = _saved(model)
        state = checkpoint['state_dict']
        frozen = frozen_parameters(model)
        assert any(k.startswith('student.clip.') for k in frozen)
        assert not set(state) & set(frozen)
        assert set(model.trainable_parameters()) <= set(state)
        # Buffers stay: BatchNorm statistics and the stored text features.
        assert {'projector.bn.running_mean', 'text_features',
                'class_names_utf8'} <= set(state)
        assert checkpoint['meta'][FROZEN_WEIGHTS_META] == \
            frozen_weights_record(model)
        stored = sum(v.numel() for v in state.values())
        full = sum(v.numel() for v in model.state_dict().values())
        assert stored < 0.2 * full

    def test_loads_strictly_into_a_model_of_the_same_weights(
            self, model, tiny_clip_cfg, tiny_large_clip_cfg):
        checkpoint = _saved(model)
        torch.manual_seed(0)
        fresh = MODELS.build(_distiller_cfg(tiny_clip_cfg,
                                            tiny_large_clip_cfg))
        # The frozen weights of the same weight source (same seed here).
        fresh.student.clip.load_state_dict(model.student.clip.state_dict())
        check_frozen_weights(fresh, checkpoint['meta'][FROZEN_WEIGHTS_META],
                             'ckpt.pth')
        fresh.load_state_dict(checkpoint['state_dict'], strict=True)
        for key, value in model.state_dict().items():
            torch.testing.assert_close(fresh.state_dict()[key], value,
                                       rtol=0, atol=0)

    def test_other_frozen_weights_are_an_error_naming_both(
            self, model, tiny_clip_cfg, tiny_large_clip_cfg):
        record = _saved(model)['meta'][FROZEN_WEIGHTS_META]
        torch.manual_seed(123)  # other random CLIP weights, same shapes
        other = MODELS.build(_distiller_cfg(tiny_clip_cfg,
                                            tiny_large_clip_cfg))
        with pytest.raises(CheckpointMismatchError) as error:
            check_frozen_weights(other, record, 'ckpt.pth')
        message = str(error.value)
        assert 'ckpt.pth was trained on other frozen weights' in message
        assert record['sha256'][:16] in message
        assert frozen_weights_record(other)['sha256'][:16] in message

    def test_malformed_record_is_refused(self, model):
        with pytest.raises(CheckpointMismatchError, match='not a fingerprint'):
            check_frozen_weights(model, 'abc', 'ckpt.pth')

    def test_save_frozen_weights_keeps_them(self, model):
        checkpoint = dict(meta={}, state_dict=dict(model.state_dict()))
        SafeCheckpointHook(interval=1, save_frozen_weights=True) \
            .before_save_checkpoint(SimpleNamespace(model=model), checkpoint)
        assert set(checkpoint['state_dict']) == set(model.state_dict())
        assert FROZEN_WEIGHTS_META not in checkpoint['meta']
