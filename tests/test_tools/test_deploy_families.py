"""Students of other CLIP families through export, loading and ONNX."""
from pathlib import Path

import pytest
import torch

import mmpromptkd  # noqa: F401
from mmpromptkd.apis import (StudentGraph, export_student,
                             load_exported_student)
from mmpromptkd.registry import MODELS
from scaled_open_clip import scaled_model_cfg, small_timm_trunks
from mmpromptkd.utils import load_checkpoint_file

CLASSES = ['red circle', 'blue square', 'green star']
#: One student of each tower kind: timm ViT with attention pooling and a
#: custom text tower (SigLIP2), timm EVA with rotary positions (EVA02),
#: convolutional FastViT (MobileCLIP2).
STUDENTS = {
    'ViT-B-16-SigLIP2': 2,
    'EVA02-B-16': 2,
    'MobileCLIP2-S2': 0,
}


def export(name, depth, teacher_cfg, path):
    cfg = dict(
        type='PromptKDDistiller', allow_untrained_teacher=True,
        student=dict(clip=dict(model_cfg=scaled_model_cfg(name)),
                     vision_prompt_depth=depth),
        teacher=dict(clip=teacher_cfg, text_prompt_depth=1))
    torch.manual_seed(0)
    with small_timm_trunks():
        model = MODELS.build(cfg).eval()
    model.prepare_text_features(CLASSES, for_training=True)
    with torch.no_grad():  # a projector that is not the identity at init
        model.projector.bn.running_mean.normal_()
    export_student(model, cfg, str(path))
    return model


@pytest.mark.parametrize('name', STUDENTS)
def test_export_load_and_onnx(name, tiny_large_clip_cfg, tmp_path):
    ort = pytest.importorskip('onnxruntime')
    path = tmp_path / 'student.pth'
    model = export(name, STUDENTS[name], tiny_large_clip_cfg, path)
    stored = load_checkpoint_file(str(path))['meta']['model']
    # The text tower it dropped is declared as a one-block stand-in: no
    # tokenizer, nothing large built to be dropped again.
    assert stored['student']['clip']['model_cfg']['text_cfg']['layers'] == 1
    assert 'hf_tokenizer_name' not in str(stored)
    with small_timm_trunks():  # the scaled trunk that the file stores
        loaded = load_exported_student(str(path))
    images = torch.randn(2, 3, *model.student.image_size)
    with torch.no_grad():
        torch.testing.assert_close(loaded.student_logits(images),
                                   model.student_logits(images))
    graph = StudentGraph(loaded).eval()
    proto = graph.export_onnx()
    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=['CPUExecutionProvider'])
    pixels = torch.rand(3, 3, *graph.image_size) * 255
    with torch.no_grad():
        expected = graph(pixels)
    got = torch.from_numpy(session.run(None, {'images': pixels.numpy()})[0])
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_a_stored_timm_tower_is_checked_before_it_is_built(
        tiny_large_clip_cfg, tmp_path):
    path = tmp_path / 'student.pth'
    export('ViT-B-16-SigLIP2', 1, tiny_large_clip_cfg, path)
    # At full size the declared trunk is not the stored (scaled) one.
    with pytest.raises(ValueError, match='declares other image-tower '
                       'weights than the file stores'):
        load_exported_student(str(path))
    payload = load_checkpoint_file(str(path))
    vision = payload['meta']['model']['student']['clip']['model_cfg'][
        'vision_cfg']
    for key, value, message in (
            ('timm_model_name', 'resnet50', "not a timm tower of one of "
             "open_clip's model configs"),
            ('timm_model_pretrained', True, 'would download weights'),
            ('image_size', 10**6, r'image_size must be an integer')):
        changed = dict(vision, **{key: value})
        payload['meta']['model']['student']['clip']['model_cfg'][
            'vision_cfg'] = changed
        torch.save(payload, tmp_path / 'changed.pth')
        with pytest.raises(ValueError, match=message):
            load_exported_student(str(tmp_path / 'changed.pth'))


def test_the_demo_siglip_style_student_exports(tiny_large_clip_cfg,
                                               tmp_path):
    # Its timm tower is registered by this package, not named by open_clip.
    from mmengine.config import Config
    siglip = Config.fromfile(
        str(Path(__file__).resolve().parents[2] / 'configs' / '_base_' /
            'models' / 'promptkd_tiny-clip.py'))['tiny_siglip_clip']
    cfg = dict(
        type='PromptKDDistiller', allow_untrained_teacher=True,
        student=dict(clip=dict(model_cfg=siglip.to_dict(), quick_gelu=True),
                     vision_prompt_depth=2),
        teacher=dict(clip=tiny_large_clip_cfg, text_prompt_depth=1))
    torch.manual_seed(0)
    model = MODELS.build(cfg).eval()
    model.prepare_text_features(CLASSES, for_training=True)
    path = tmp_path / 'student.pth'
    export_student(model, cfg, str(path))
    loaded = load_exported_student(str(path))
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.student_logits(images),
                                   model.student_logits(images))
