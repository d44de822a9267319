"""Students of every family go through export, loading and ONNX.

What ``export_student`` writes, ``load_exported_student`` reads, and
``tools/deployment/pytorch2onnx.py`` turns into a graph that onnxruntime
runs as PyTorch does, for the convolutional families: open_clip's
ModifiedResNet (RN50 family) and a timm ConvNeXt with open_clip's linear
projection head. (open_clip's ViT goes through the same tools in
test_deployment.py, timm ViT and EVA trunks in test_deploy_families.py.)
Tiny random models only.
"""
import json

import pytest
import torch

import mmpromptkd  # noqa: F401
from mmpromptkd.apis import export_student, load_exported_student
from mmpromptkd.registry import MODELS
from scaled_open_clip import scaled_model_cfg, small_timm_trunks
from tool_scripts import load_tool

CLASSES = ['red circle', 'blue square', 'green star']
#: Students by open_clip config name: the vision prompt depth their tower
#: takes (convolutional towers take none) and a small image size (the
#: export and onnxruntime runs take less time).
FAMILIES = {
    'RN50': (0, 64),  # ModifiedResNet
    'convnext_base_w': (0, 64),  # timm ConvNeXt, timm_proj='linear'
}


@pytest.fixture(scope='module')
def onnx_tool():
    pytest.importorskip('onnxruntime')
    return load_tool('deployment/pytorch2onnx.py')


def export(name, teacher_cfg, path):
    """Build a tiny student of ``name``, store features, export it."""
    depth, image_size = FAMILIES[name]
    model_cfg = scaled_model_cfg(name)
    model_cfg['vision_cfg']['image_size'] = image_size
    cfg = dict(
        type='PromptKDDistiller', allow_untrained_teacher=True,
        student=dict(clip=dict(model_cfg=model_cfg),
                     vision_prompt_depth=depth),
        teacher=dict(clip=teacher_cfg, text_prompt_depth=1))
    torch.manual_seed(0)
    with small_timm_trunks():
        model = MODELS.build(cfg).eval()
    model.prepare_text_features(CLASSES, for_training=True)
    export_student(model, cfg, str(path))
    return model


@pytest.mark.parametrize('name', FAMILIES)
def test_every_family_round_trips_to_onnx(name, onnx_tool,
                                          tiny_large_clip_cfg, tmp_path):
    path = tmp_path / 'student.pth'
    model = export(name, tiny_large_clip_cfg, path)
    with small_timm_trunks():  # the scaled trunk that the file stores
        loaded = load_exported_student(str(path))
        images = torch.randn(2, 3, *model.student.image_size)
        with torch.no_grad():
            torch.testing.assert_close(loaded.student_logits(images),
                                       model.student_logits(images))
        out = tmp_path / 'student.onnx'
        onnx_tool.main([str(path), str(out)])
    meta = json.loads((tmp_path / 'student.json').read_text())
    assert meta['class_names'] == CLASSES
    assert meta['input']['shape'][2:] == list(model.student.image_size)
