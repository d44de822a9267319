"""Deployment of a student alone: ONNX export, inferencer and its CLI."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose, default_collate

import mmpromptkd  # noqa: F401
from mmpromptkd.apis import (StudentGraph, StudentInferencer, export_student,
                             load_exported_student, preprocessing)
from mmpromptkd.registry import MODELS, TRANSFORMS
from mmpromptkd.utils import load_checkpoint_file
from synthetic_shapes import generate_coop_dataset
from tool_runs import TOOLS, call_tool, check_ok, run_tool

TOOL = TOOLS / 'deployment' / 'pytorch2onnx.py'
PIPELINE = [
    dict(type='mmpromptkd.LoadImageFromFileSafe'),
    dict(type='ResizeEdge', scale=32, edge='short', interpolation='bicubic',
         backend='pillow'),
    dict(type='CenterCrop', crop_size=32),
    dict(type='PackInputs'),
]


@pytest.fixture
def exported(tmp_path, tiny_clip_cfg, tiny_large_clip_cfg):
    """A tiny student with random prompts and projector, exported, and the
    test images of a generated domain (5 classes x 2)."""
    tmp = tmp_path / 'deploy'
    root = tmp / 'shapes'
    generate_coop_dataset(
        root, num_classes=5, train_per_class=1, val_per_class=1,
        test_per_class=2)
    classes = [
        line.split(' ', 1)[1]
        for line in (root / 'classnames.txt').read_text().splitlines()
    ]
    torch.manual_seed(0)
    cfg = dict(
        type='PromptKDDistiller',
        allow_untrained_teacher=True,
        student=dict(clip=tiny_clip_cfg, vision_prompt_depth=2),
        teacher=dict(
            clip=tiny_large_clip_cfg,
            vision_prompt_depth=2,
            text_prompt_depth=2))
    model = MODELS.build(cfg)
    model.prepare_text_features(classes, for_training=True)
    with torch.no_grad():  # a projector that is not the identity at init
        model.projector.bn.running_mean.normal_()
    path = tmp / 'student.pth'
    export_student(model.eval(), cfg, str(path), test_pipeline=PIPELINE)
    # The same student with the teacher's text tower (open vocabulary).
    export_student(model, cfg, str(tmp / 'open.pth'), with_text_encoder=True)
    images = sorted(str(p) for p in (root / 'images').rglob('test_*.png'))
    return path, images, classes


def _reference_scores(path, images):
    """Softmax of the distiller over the configs' test pipeline."""
    model = load_exported_student(str(path))
    pipeline = Compose([
        TRANSFORMS.build(dict(type='LoadImageFromFileSafe')),
        TRANSFORMS.build(dict(type='PackInputs'))
    ])
    batch = default_collate([pipeline(dict(img_path=p)) for p in images])
    data = model.data_preprocessor(batch, False)
    with torch.no_grad():
        return torch.stack([
            s.pred_score for s in model.predict(data['inputs'])
        ]).numpy(), data['inputs']


def test_graph_equals_the_distiller(exported):
    path, images, _ = exported
    model = load_exported_student(str(path))
    graph = StudentGraph(model, with_features=True).eval()
    pixels = torch.rand(3, 3, 32, 32) * 255
    with torch.no_grad():
        logits, features = graph(pixels)
        normalised = (pixels - model.data_preprocessor.mean) / \
            model.data_preprocessor.std
        torch.testing.assert_close(logits, model.student_logits(normalised))
        torch.testing.assert_close(features,
                                   model.student_features(normalised))
    assert graph.class_names == model.class_names


def test_graph_needs_stored_features(exported):
    model = load_exported_student(str(exported[0]))
    model.text_features = model.text_features[:0]
    with pytest.raises(ValueError, match='no stored text features'):
        StudentGraph(model)


@pytest.mark.slow
def test_onnx_export_parity_and_refusals(exported, tmp_path):
    ort = pytest.importorskip('onnxruntime')
    onnx = pytest.importorskip('onnx')
    path, images, classes = exported
    out = tmp_path / 'student.onnx'
    tool = TOOL
    log = check_ok(
        run_tool([sys.executable, tool, path, out, '--features'],
                 cwd=tmp_path))
    assert 'max |diff|' in log
    meta = json.loads((tmp_path / 'student.json').read_text())
    assert meta['class_names'] == classes
    assert meta['input']['shape'] == ['batch', 3, 32, 32]
    # The resize and crop the graph expects, from the test pipeline.
    assert meta['preprocessing'] == PIPELINE[1:3]
    proto = onnx.load(str(out))
    stored = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(stored['class_names']) == classes

    # Real images through the configs' pipeline: onnxruntime on RGB pixels
    # equals the PyTorch student on the BGR-loaded, normalised batch.
    expected, _ = _reference_scores(path, images)
    session = ort.InferenceSession(
        str(out), providers=['CPUExecutionProvider'])
    from PIL import Image
    rgb = np.stack([
        np.asarray(Image.open(p).convert('RGB'), dtype=np.float32)
        for p in images
    ]).transpose(0, 3, 1, 2)
    for batch in (rgb[:1], rgb[:7]):
        logits, features = session.run(None, {'images': batch})
        assert logits.shape == (len(batch), len(classes))
        assert features.shape[0] == len(batch)
        scores = torch.from_numpy(logits).softmax(-1).numpy()
        np.testing.assert_allclose(
            scores, expected[:len(batch)], atol=1e-4, rtol=0)

    # Never replaced without --force; replaced with it (in this process:
    # the script's own start is proven above).
    before = out.read_bytes()
    result = call_tool(tool, [path, out])
    assert result.returncode != 0 and '--force' in result.stdout
    assert out.read_bytes() == before
    check_ok(call_tool(tool, [path, out, '--force']))
    assert out.read_bytes() != before  # now without the features output


def test_missing_onnxruntime_names_the_extra(exported, tmp_path):
    code = ('import sys, runpy\n'
            'sys.modules["onnxruntime"] = None\n'
            f'sys.argv = ["x", {str(exported[0])!r}, '
            f'{str(tmp_path / "x.onnx")!r}]\n'
            f'runpy.run_path({str(TOOL)!r}, run_name="__main__")\n')
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert 'onnxruntime is not installed' in out.stderr
    assert '.[deploy]' in out.stderr
    assert not (tmp_path / 'x.onnx').exists()


def test_inferencer_equals_the_test_pipeline(exported):
    path, images, classes = exported
    expected, _ = _reference_scores(path, images)
    results = StudentInferencer(str(path), batch_size=3)(images, topk=2)
    assert len(results) == len(images)
    for result, scores in zip(results, expected):
        np.testing.assert_allclose(result['pred_scores'], scores, atol=1e-6)
        assert result['pred_class'] == classes[int(scores.argmax())]
        assert [n for n, _ in result['topk']][0] == result['pred_class']
    # A subset of the stored classes: softmax over their logits only.
    subset = [classes[3], classes[0]]
    picked = StudentInferencer(str(path), classes=subset)(images)
    logits = np.log(expected[:, [3, 0]])
    renorm = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    for result, scores in zip(picked, renorm):
        np.testing.assert_allclose(result['pred_scores'], scores, atol=1e-5)
        assert result['pred_class'] == subset[int(scores.argmax())]


def test_inferencer_resizes_as_the_stored_pipeline(exported, tmp_path):
    """The inferencer reads the export's stored test pipeline: here a
    40 px short edge and a 32 px centre crop (not the default 32 px
    resize)."""
    path, images, _ = exported
    payload = load_checkpoint_file(str(path))
    stored = [
        dict(type='mmpretrain.ResizeEdge', scale=40, edge='short',
             interpolation='bilinear'),
        dict(type='CenterCrop', crop_size=32),
    ]
    payload['meta']['test_pipeline'] = PIPELINE[:1] + stored + PIPELINE[3:]
    other = tmp_path / 'other.pth'
    torch.save(payload, other)
    model = load_exported_student(str(other))
    assert preprocessing(model) == [dict(stored[0], type='ResizeEdge'),
                                    stored[1]]
    pipeline = Compose([TRANSFORMS.build(t) for t in PIPELINE[:1] + [
        dict(stored[0], type='ResizeEdge'), stored[1], PIPELINE[3]]])
    batch = default_collate([pipeline(dict(img_path=p)) for p in images])
    with torch.no_grad():
        expected = torch.stack([
            s.pred_score for s in model.predict(
                model.data_preprocessor(batch, False)['inputs'])
        ]).numpy()
    results = StudentInferencer(str(other))(images)
    np.testing.assert_allclose(
        np.stack([r['pred_scores'] for r in results]), expected, atol=1e-6)
    assert not np.allclose(expected, _reference_scores(path, images)[0])


@pytest.mark.parametrize('step, message', [
    (dict(type='mmpretrain.Albumentations', transforms=[]),
     r"meta.test_pipeline\[1\]: type 'mmpretrain.Albumentations' is not"),
    (dict(type='os.system'), "type 'os.system' is not one of"),
    (dict(type='ResizeEdge', scale=10**6), r'\[1\].scale: expected sizes'),
    (dict(type='CenterCrop', crop_size=[32, 0]), 'crop_size: expected'),
])
def test_a_stored_pipeline_names_only_resizing(exported, tmp_path, step,
                                               message):
    path = exported[0]
    payload = load_checkpoint_file(str(path))
    payload['meta']['test_pipeline'] = [PIPELINE[0], step]
    bad = tmp_path / 'bad.pth'
    torch.save(payload, bad)
    with pytest.raises(ValueError, match=f'{bad}: {message}'
                       if message.startswith('meta') else message):
        load_exported_student(str(bad))


@pytest.mark.parametrize('classes, message', [
    ([], 'the class list is empty'),
    (['x', 'x'], 'more than once'),
    (['no such class'], 'not among the 5 stored classes'),
])
def test_inferencer_bad_classes(exported, classes, message):
    with pytest.raises(ValueError, match=message):
        StudentInferencer(str(exported[0]), classes=classes)


@pytest.mark.slow
def test_infer_cli_prints_a_table(exported, tmp_path):
    path, images, classes = exported
    out = tmp_path / 'out.json'
    log = check_ok(
        run_tool([
            sys.executable, TOOLS / 'infer.py', *images[:3], '--model', path,
            '--topk', '2', '--out', out
        ],
                 cwd=tmp_path))
    lines = log.strip().splitlines()
    assert lines[0].split() == ['image', 'class', 'score']
    assert len(lines) == 1 + 3 * 2
    written = json.loads(out.read_text())
    assert [r['image'] for r in written] == images[:3]
    for line, result in zip(lines[1::2], written):
        name, score = result['topk'][0]
        assert line.startswith(result['image'])
        assert name in line and f'{score:.4f}' in line
    bad = call_tool(TOOLS / 'infer.py', [
        images[0], '--model', path, '--classes', f'{classes[0]},unknown'])
    assert bad.returncode != 0 and "['unknown'] are not among" in bad.stdout


@pytest.mark.slow
def test_new_class_names_reach_the_inferencer_and_onnx(exported, tmp_path):
    """An open-vocabulary export classifies over new names (their features
    from its text encoder), in the inferencer and in the ONNX graph."""
    ort = pytest.importorskip('onnxruntime')
    path, images, classes = exported
    open_path = path.parent / 'open.pth'
    names = ['purple moon', classes[2], 'orange kite']
    model = load_exported_student(str(open_path))
    model.select_classes(names)
    # Stored name: its stored row; new names: the text encoder's features.
    assert torch.equal(model.text_features[1],
                       load_exported_student(str(path)).text_features[2])
    results = StudentInferencer(str(open_path), classes=names)(images)
    _, inputs = _reference_scores(path, images)
    with torch.no_grad():
        expected = model.student_logits(inputs).softmax(-1).numpy()
    for result, scores in zip(results, expected):
        assert result['pred_class'] in names
        np.testing.assert_allclose(result['pred_scores'], scores, atol=1e-6)

    out = tmp_path / 'open.onnx'
    check_ok(call_tool(TOOL, [open_path, out, '--classes', ','.join(names)]))
    assert json.loads((tmp_path / 'open.json').read_text())[
        'class_names'] == names
    session = ort.InferenceSession(
        str(out), providers=['CPUExecutionProvider'])
    pixels = torch.rand(4, 3, 32, 32) * 255
    with torch.no_grad():
        reference = StudentGraph(model)(pixels).numpy()
    logits = session.run(None, {'images': pixels.numpy()})[0]
    np.testing.assert_allclose(logits, reference, atol=1e-4, rtol=0)
    # A plain export refuses new names, naming them.
    bad = call_tool(TOOL, [path, tmp_path / 'x.onnx', '--classes', 'zz'])
    assert bad.returncode != 0 and "['zz'] are not among" in bad.stdout
