"""A stored model config is walked safely and builds only what a file holds.

An exported student's ``meta['model']`` comes from a file: these are the
ways such a config tried to hang the loader, fetch from the network, reach
local folders, or allocate what the file does not hold.
"""
import copy
import time
from pathlib import Path

import pytest
import torch

from mmpromptkd.apis import load_exported_student
from mmpromptkd.apis.stored_config import check_stored_config

#: The demo's model configs (its timm tower: 32 px, 8 px patches).
DEMO_MODELS = str(Path(__file__).resolve().parents[2] / 'configs' / '_base_' /
                  'models' / 'promptkd_tiny-clip.py')
TINY = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2,
                    head_width=32),
    text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2,
                  layers=2))


def student(**model_cfg):
    """A distiller config whose student CLIP has ``model_cfg``."""
    return dict(
        type='PromptKDDistiller',
        student=dict(type='PromptedCLIP',
                     clip=dict(model_cfg=dict(copy.deepcopy(TINY),
                                              **model_cfg))),
        projector=dict(type='FeatureProjector', out_channels=32))


def refused(cfg, match, **kwargs):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match) as error:
        check_stored_config(cfg, 'f.pth: meta.model', **kwargs)
    assert time.perf_counter() - start < 5
    assert str(error.value).startswith('f.pth: meta.model')
    return str(error.value)


def test_a_plain_config_passes():
    check_stored_config(student(), 'f.pth: meta.model')


def test_aliasing_is_refused_at_once():
    node = [dict(type='PromptedCLIP')]
    for _ in range(12):
        node = [node] * 40  # 40 ** 12 paths through a few hundred bytes
    refused(dict(student(), projector=node), 'same object')


def test_deep_nesting_is_a_named_error():
    node = []
    for _ in range(50000):
        node = [node]
    refused(dict(student(), projector=node), 'deeper than')


def test_a_cycle_is_refused():
    cfg = student()
    cfg['teacher'] = cfg
    refused(cfg, 'model.teacher is the same object as model')


@pytest.mark.parametrize('part, key, value', [
    ('vision_cfg', 'timm_model_name', 'hf-hub:someone/model'),
    ('vision_cfg', 'timm_model_pretrained', True),
    ('text_cfg', 'hf_model_name', 'local-dir:/home'),
    ('text_cfg', 'hf_tokenizer_name', 'hf-hub:someone/tokenizer'),
])
def test_the_clip_architecture_names_no_hub_or_folder(part, key, value):
    cfg = student()
    cfg['student']['clip']['model_cfg'][part][key] = value
    message = refused(cfg, key)
    assert f'model.student.clip.model_cfg.{part}.{key}' in message


@pytest.mark.parametrize('clip_key', ['openai_file', 'checkpoint',
                                      'model_name', 'pretrained',
                                      'cache_dir'])
def test_the_clip_weights_name_no_file(clip_key):
    cfg = student()
    cfg['student']['clip'][clip_key] = '/elsewhere/weights.pt'
    refused(cfg, f'model.student.clip.{clip_key}')


@pytest.mark.parametrize('where, key', [
    ((), 'custom_imports'),
    (('student', ), 'not_an_argument'),
])
def test_keys_are_checked_against_the_signature(where, key):
    cfg = student()
    node = cfg
    for part in where:
        node = node[part]
    node[key] = dict(imports=['os'])
    message = refused(cfg, key)
    assert 'accepts' in message


@pytest.mark.parametrize('key, value', [
    ('init_cfg', dict(checkpoint='/etc/passwd')),
    ('checkpoint', '/somewhere/teacher.pth'),
])
def test_no_file_is_named(key, value):
    cfg = student()
    cfg['student'][key] = value
    refused(cfg, f'model.student.{key}')


def tiny_shapes(prefix='student.clip.', layers=2):
    """The stored shapes of TINY's image tower and of the projector (as a
    student that dropped its text tower stores them)."""
    import open_clip
    model_cfg = copy.deepcopy(TINY)
    model_cfg['vision_cfg']['layers'] = layers
    with torch.device('meta'):
        clip = open_clip.CLIP(**model_cfg)
    shapes = {f'{prefix}{k}': tuple(v.shape)
              for k, v in clip.state_dict().items()
              if k.startswith('visual.') or k == 'logit_scale'}
    shapes.update({'projector.fc1.weight': (32, 32),
                   'projector.fc2.weight': (32, 32)})
    return shapes


def test_the_declared_tower_must_be_the_stored_one():
    check_stored_config(student(), 'f.pth: meta.model',
                        state_shapes=tiny_shapes())
    cfg = student(vision_cfg=dict(image_size=224, patch_size=14,
                                  width=8192, layers=64, head_width=128))
    message = refused(cfg, 'not that of the stored',
                      state_shapes=tiny_shapes())
    assert 'model.student.clip.model_cfg.vision_cfg declares 64 blocks' \
        in message
    refused(student(), 'stores 3 blocks',
            state_shapes=tiny_shapes(layers=3))


def test_a_tower_that_is_not_stored_is_bounded():
    cfg = student(text_cfg=dict(context_length=77, vocab_size=49408,
                                width=8192, heads=64, layers=64))
    message = refused(cfg, 'does not store', state_shapes=tiny_shapes())
    assert 'model.student.clip.model_cfg.text_cfg' in message


def test_the_loader_refuses_before_building(tmp_path, monkeypatch):
    cfg = student(vision_cfg=dict(image_size=224, patch_size=14,
                                  width=8192, layers=64, head_width=128))
    path = tmp_path / 'student.pth'
    torch.save(dict(state_dict={'x': torch.zeros(10)},
                    meta=dict(kind='mmpromptkd.exported_student',
                              model=cfg)), path)
    from mmpromptkd.registry import MODELS
    monkeypatch.setattr(MODELS, 'build', lambda *a, **k: pytest.fail(
        'built a model the file does not hold'))
    with pytest.raises(ValueError, match='does not store'):
        load_exported_student(str(path))


def test_a_text_encoder_builds_no_image_tower():
    """An open-vocabulary export's text encoder declares the teacher's
    ViT-L/14 image tower, which it never builds (a stand-in)."""
    text_encoder = dict(
        type='PromptedCLIP', image_tower=False,
        clip=dict(model_cfg=dict(
            copy.deepcopy(TINY), vision_cfg=dict(
                image_size=224, patch_size=14, width=1024, layers=24,
                head_width=64))))
    cfg = dict(student(), text_encoder=text_encoder)
    shapes = dict(tiny_shapes(), **{
        'text_encoder.clip.token_embedding.weight': (49408, 64),
        'text_encoder.clip.positional_embedding': (77, 64),
        'text_encoder.clip.transformer.resblocks.0.ln_1.weight': (64, ),
        'text_encoder.clip.transformer.resblocks.1.ln_1.weight': (64, ),
    })
    check_stored_config(cfg, 'f.pth: meta.model', state_shapes=shapes)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """Payloads of exported tiny students: an open_clip ViT with a vision
    prompt, and the demo's timm tower (32 px, 8 px patches)."""
    from mmengine.config import Config

    from mmpromptkd.apis import export_student
    from mmpromptkd.registry import MODELS
    from mmpromptkd.utils import load_checkpoint_file
    demo = Config.fromfile(DEMO_MODELS)
    payloads = {}
    for name, model_cfg in (('vit', copy.deepcopy(TINY)),
                            ('timm', demo['tiny_siglip_clip'].to_dict())):
        cfg = dict(type='PromptKDDistiller', allow_untrained_teacher=True,
                   student=dict(clip=dict(model_cfg=model_cfg),
                                vision_prompt_depth=1),
                   teacher=dict(clip=dict(model_cfg=copy.deepcopy(TINY)),
                                text_prompt_depth=1))
        model = MODELS.build(cfg).eval()
        model.prepare_text_features(['a', 'b'], for_training=True)
        path = str(tmp_path_factory.mktemp(name) / 'student.pth')
        export_student(model, cfg, path)
        payloads[name] = load_checkpoint_file(path)
    return payloads


def changed(payload, path, change):
    """Write ``payload`` with ``change(meta.model)`` applied to ``path``."""
    payload = copy.deepcopy(payload)
    change(payload['meta']['model'])
    torch.save(payload, path)
    return str(path)


def _clip(model):
    return model['student']['clip']['model_cfg']


@pytest.mark.parametrize('change, message', [
    (lambda m: _clip(m).update(embed_dim=10**12),
     r'model_cfg declares other image-tower weights .*visual\.proj'),
    (lambda m: _clip(m)['vision_cfg'].update(mlp_ratio=10**9),
     r'model_cfg declares other image-tower weights .*c_fc'),
    (lambda m: _clip(m)['text_cfg'].update(context_length=10**6),
     r'model_cfg declares 1,000,\d+,\d+,\d+ elements that the file does '
     'not store'),
    (lambda m: _clip(m)['text_cfg'].update(width=1, heads=1, layers=10**7),
     r'text_cfg declares 10000000 blocks'),
    (lambda m: m['student'].update(vision_prompt_length=10**12),
     r'student\.vision_prompt_length is 1000000000000'),
    (lambda m: m['projector'].update(out_channels=10**12),
     r'projector\.out_channels is 1000000000000'),
    (lambda m: m['projector'].update(hidden_channels=10**12),
     r'projector\.hidden_channels is 1000000000000'),
], ids=['embed_dim', 'mlp_ratio', 'context_length', 'text_layers',
        'vision_prompt_length', 'projector_out', 'projector_hidden'])
def test_every_declared_size_is_compared_or_bounded(change, message,
                                                    exported, tmp_path,
                                                    monkeypatch):
    """A size the stored weights do not have is refused before anything is
    built (the sizes would need terabytes)."""
    from mmpromptkd.registry import MODELS
    path = changed(exported['vit'], tmp_path / 'student.pth', change)
    monkeypatch.setattr(MODELS, 'build', lambda *a, **k: pytest.fail(
        'built a model the file does not hold'))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=message) as error:
        load_exported_student(path)
    assert time.perf_counter() - start < 3
    assert str(error.value).endswith('Nothing was built.')


def test_a_timm_image_size_is_that_of_its_patch_grid_signature(
        exported, tmp_path):
    """The demo's trunk takes 32 px images (a 4 x 4 grid of 8 px patches):
    a stored 4096 would make inference resize every image to 4096 px and
    fail inside timm."""
    path = changed(exported['timm'], tmp_path / 'student.pth', lambda m: m[
        'student']['clip']['model_cfg']['vision_cfg'].update(image_size=4096))
    with pytest.raises(ValueError, match=r'image_size is 4096.*\(32, 32\)'):
        load_exported_student(path)
    same = changed(exported['timm'], tmp_path / 'same.pth', lambda m: None)
    assert load_exported_student(same).student.image_size == (32, 32)


def test_a_linear_timm_head_signature(tmp_path):
    """open_clip's linear head over the demo's timm trunk (``timm_proj=
    'linear'``, as ConvNeXt towers have) builds, exports and loads."""
    from mmengine.config import Config

    from mmpromptkd.apis import export_student
    from mmpromptkd.registry import MODELS
    model_cfg = Config.fromfile(DEMO_MODELS)['tiny_siglip_clip'].to_dict()
    model_cfg['vision_cfg']['timm_proj'] = 'linear'
    cfg = dict(type='PromptKDDistiller', allow_untrained_teacher=True,
               student=dict(clip=dict(model_cfg=model_cfg)),
               teacher=dict(clip=dict(model_cfg=copy.deepcopy(TINY))))
    model = MODELS.build(cfg).eval()
    model.prepare_text_features(['a', 'b'], for_training=True)
    export_student(model, cfg, str(tmp_path / 'student.pth'))
    loaded = load_exported_student(str(tmp_path / 'student.pth'))
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.student_logits(images),
                                   model.student_logits(images))
