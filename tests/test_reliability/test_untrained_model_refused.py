"""A model that is not what training produced is never evaluated.

mmengine's ``load_from`` and ``tools/test.py`` load with ``strict=False``:
a projector of another width, a NaN prompt or an infinite logit scale used
to give one generic warning and then metrics. Every such checkpoint is now
an error naming the key (and the shapes) before any image is seen.
"""
import json
import subprocess
import sys

import pytest
import torch
from mmengine.runner.checkpoint import load_checkpoint

from mmpromptkd.registry import MODELS
from mmpromptkd.utils.state_dict_check import (CheckpointMismatchError,
                                               check_state_dict)
from reliability_utils import CONFIG, RANDOM_WEIGHTS, REPO

CLASSES = ['red circle', 'blue square', 'green star']


@pytest.fixture
def distiller(tiny_clip_cfg, tiny_large_clip_cfg):
    model = MODELS.build(
        dict(
            type='PromptKDDistiller',
            allow_untrained_teacher=True,
            student=dict(clip=tiny_clip_cfg, vision_prompt_depth=2),
            teacher=dict(clip=tiny_large_clip_cfg, vision_prompt_depth=1,
                         text_prompt_depth=1)))
    model.prepare_text_features(CLASSES, for_training=True)
    return model


def _fresh(distiller):
    """A model like ``distiller`` that has not seen its checkpoint yet."""
    model = MODELS.build(
        dict(type='PromptKDDistiller',
             student=dict(clip=distiller.student.clip_architecture,
                          vision_prompt_depth=2),
             projector=dict(type='FeatureProjector',
                            out_channels=distiller.text_features.shape[1])))
    return model


def _corrupt(state, key, value):
    state = dict(state)
    state[key] = value
    return state


def _cases(distiller):
    state = distiller.state_dict()
    prompt = next(k for k in distiller.trainable_parameters()
                  if 'prompt' in k)
    weight = 'projector.fc1.weight' if 'projector.fc1.weight' in state \
        else next(k for k in state if k.startswith('projector.')
                  and k.endswith('weight'))
    nan_prompt = state[prompt].clone()
    nan_prompt.view(-1)[3] = float('nan')
    names = json.dumps(CLASSES[:2]).encode()
    return {
        # Another projector width.
        weight: _corrupt(state, weight,
                         torch.zeros(state[weight].shape[0] + 3,
                                     state[weight].shape[1])),
        prompt: _corrupt(state, prompt, nan_prompt),
        'student.clip.logit_scale': _corrupt(
            state, 'student.clip.logit_scale', torch.tensor(float('inf'))),
        # 3 feature rows, 2 class names.
        'text_features': _corrupt(state, 'class_names_utf8',
                                  torch.tensor(list(names),
                                               dtype=torch.uint8)),
        'UTF-8': _corrupt(state, 'class_names_utf8',
                          torch.tensor([0xff, 0xfe, 0x5b],
                                       dtype=torch.uint8)),
        'missing': {k: v for k, v in state.items() if k != prompt},
        'unexpected': _corrupt(state, 'projector.extra', torch.zeros(1)),
    }


@pytest.mark.parametrize('case', [0, 1, 2, 3, 4, 5, 6])
def test_distiller_checkpoint_that_does_not_fit(distiller, tmp_path, case):
    name, state = list(_cases(distiller).items())[case]
    if name in ('missing', 'unexpected'):
        name = {'missing': 'missing keys', 'unexpected': 'projector.extra'}[
            name]
    path = tmp_path / 'bad.pth'
    torch.save(dict(meta={}, state_dict=state), path)
    model = _fresh(distiller)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # What load_from and tools/test.py do: mmengine with strict=False.
    with pytest.raises(CheckpointMismatchError, match=name) as e:
        load_checkpoint(model, str(path), map_location='cpu', strict=False)
    assert 'Nothing was loaded' in str(e.value)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_good_checkpoint_still_loads(distiller, tmp_path):
    path = tmp_path / 'good.pth'
    torch.save(dict(meta={}, state_dict=distiller.state_dict()), path)
    model = _fresh(distiller)
    load_checkpoint(model, str(path), map_location='cpu', strict=False)
    assert model.class_names == tuple(CLASSES)
    images = torch.randn(2, 3, 32, 32)
    distiller.eval(), model.eval()
    torch.testing.assert_close(model(images), distiller(images))


def test_shape_message_names_both_shapes():
    with pytest.raises(CheckpointMismatchError) as e:
        check_state_dict({'w': torch.zeros(4, 2)}, {'w': torch.zeros(7, 2)},
                         'x.pth')
    assert 'x.pth' in str(e.value)
    assert 'w: checkpoint (7, 2), model (4, 2)' in str(e.value)


def test_teacher_checkpoint_with_nan_prompts(tiny_large_clip_cfg, tmp_path):
    cfg = dict(type='PromptSRCClassifier', clip=tiny_large_clip_cfg,
               vision_prompt_depth=1, text_prompt_depth=1)
    teacher = MODELS.build(cfg)
    state = teacher.state_dict()
    key = next(k for k in state if k.endswith('text_ctx'))
    state[key] = torch.full_like(state[key], float('inf'))
    path = tmp_path / 'teacher.pth'
    torch.save(dict(meta={}, state_dict=state), path)
    for load in (lambda m: m.load_prompt_checkpoint(str(path)),
                 lambda m: load_checkpoint(m, str(path), strict=False)):
        with pytest.raises(CheckpointMismatchError,
                           match=f'NaN or infinite.*{key}'):
            load(MODELS.build(cfg))
    # As the distiller's teacher.
    prompted = dict(type='PromptedCLIP', clip=tiny_large_clip_cfg,
                    vision_prompt_depth=1, text_prompt_depth=1)
    with pytest.raises(CheckpointMismatchError, match=str(path)):
        MODELS.build(dict(prompted, checkpoint=str(path)))


class TestClassNames:

    def test_whitespace_or_case_is_an_error(self, distiller):
        for names in (['red circle ', 'blue square', 'green star'],
                      ['Red Circle', 'blue  square', 'green star']):
            for for_training in (True, False):
                with pytest.raises(ValueError,
                                   match='only in whitespace or case'):
                    distiller.prepare_text_features(
                        names, for_training=for_training)

    def test_other_classes_still_get_features(self, distiller):
        distiller.prepare_text_features(['dog', 'cat', 'owl'],
                                        for_training=False)
        assert distiller._eval_class_names == ('dog', 'cat', 'owl')


@pytest.mark.slow
def test_test_tool_refuses_another_projector_width(tmp_path, shapes_root):
    """A fresh ``tools/test.py`` process: an error naming the file and key."""
    from mmengine.config import Config
    cfg = Config.fromfile(str(CONFIG))
    cfg.model.student.clip.checkpoint = None
    cfg.model.teacher.clip.checkpoint = None
    model = MODELS.build(cfg.model)
    state = model.state_dict()
    key = 'projector.fc1.weight'
    state[key] = torch.zeros(state[key].shape[0] * 2, state[key].shape[1])
    path = tmp_path / 'wide.pth'
    torch.save(dict(meta={}, state_dict=state), path)
    out = tmp_path / 'metrics.json'
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools/test.py'), str(CONFIG), str(path),
         '--work-dir', str(tmp_path / 'test'), '--out', str(out),
         '--cfg-options', *RANDOM_WEIGHTS,
         f'test_dataloader.dataset.data_root={shapes_root}'],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode != 0
    assert f'{path}: the checkpoint does not fit' in result.stderr
    assert key in result.stderr and 'model (' in result.stderr
    assert not out.exists() and 'b2n/' not in result.stdout


def test_image_of_another_size_is_named(distiller):
    from mmpretrain.structures import DataSample
    samples = [DataSample(metainfo=dict(img_path=f'img_{i}.png',
                                        img_shape=(32, 32)))
               for i in range(3)]
    samples[1].set_metainfo(dict(img_shape=(40, 36)))
    # Padded to the largest image, as the data preprocessor does.
    batch = torch.zeros(3, 3, 40, 36)
    for mode in ('predict', 'loss', 'tensor'):
        with pytest.raises(ValueError) as e:
            distiller(batch, samples, mode=mode)
        message = str(e.value)
        assert 'img_1.png (40 x 36)' in message and 'img_0' not in message
        assert 'takes 32 x 32 images but the batch is 40 x 36' in message


def test_not_a_checkpoint(tmp_path):
    """Random bytes and a pickled list: errors naming the file."""
    from mmengine.runner.checkpoint import _load_checkpoint

    from mmpromptkd.utils import load_checkpoint_file
    noise = tmp_path / 'noise.pth'
    noise.write_bytes(torch.randint(0, 256, (4096, ),
                                    generator=torch.Generator().manual_seed(3),
                                    dtype=torch.uint8).numpy().tobytes())
    listed = tmp_path / 'list.pth'
    torch.save([torch.zeros(2)], listed)
    with pytest.raises(RuntimeError, match=f'{noise}: not a checkpoint'):
        load_checkpoint_file(str(noise))
    # What load_from, --resume and tools/test.py read files with
    # (SafeLoadingRunner), here through mmengine's scheme registry.
    with pytest.raises(RuntimeError, match=str(noise)):
        _load_checkpoint(f'mmpromptkd://{noise}', map_location='cpu')
    with pytest.raises(TypeError, match=f'{listed}: holds a list'):
        _load_checkpoint(f'mmpromptkd://{listed}', map_location='cpu')
