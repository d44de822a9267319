"""Export a trained student and classify an image with mmpretrain.apis."""
import glob
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.dataset import Compose
from mmpretrain.apis import ImageClassificationInferencer

import mmpromptkd  # noqa: F401
from mmpromptkd.apis import load_exported_student
import synthetic_shapes
from mmpromptkd.registry import TRANSFORMS
from tool_runs import REPO, TOOLS, call_tool, check_ok
from tool_scripts import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/promptkd/'
                  'promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py')


def run(*args):
    result = subprocess.run([sys.executable, *args], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('export')
    data = str(tmp / 'data')
    synthetic_shapes.generate_coop_dataset(
        data, num_classes=6, train_per_class=4, val_per_class=1,
        test_per_class=2, image_size=32)
    options = [f'{s}_dataloader.dataset.data_root={data}'
               for s in ('train', 'val', 'test')]
    # In this process: the script's own start is proven by other tests.
    check_ok(call_tool(TOOLS / 'train.py', [
        CONFIG, '--work-dir', str(tmp / 'w'), '--cfg-options',
        'train_cfg.max_epochs=1',
        # 24 images: the last partial batch is dropped, so batch 8.
        'train_dataloader.batch_size=8', *options,
        'model.allow_untrained_teacher=True']))
    return tmp, data, options


@pytest.mark.slow
def test_export_then_mmpretrain_inference(trained):
    tmp, data, options = trained
    out = str(tmp / 'student.pth')
    run('tools/model_converters/export_student.py', CONFIG,
        str(tmp / 'w' / 'epoch_1.pth'), out, '--cfg-options', *options)
    assert osp.isfile(str(tmp / 'student.py'))
    classes = synthetic_shapes.list_class_names(6)

    alone = load_exported_student(out)
    assert alone.teacher is None and list(alone.class_names) == classes

    inferencer = ImageClassificationInferencer(
        str(tmp / 'student.py'), pretrained=out, device='cpu')
    image = sorted(glob.glob(osp.join(data, 'images', '*', 'test_*.png')))[0]
    result = inferencer(image)[0]
    assert result['pred_class'] == classes[result['pred_label']]
    # Same prediction as the exported model used directly.
    pipeline = Compose([
        TRANSFORMS.build(dict(type='LoadImageFromFile')),
        TRANSFORMS.build(dict(type='PackInputs'))
    ])
    inputs = pipeline(dict(img_path=image))
    batch = alone.data_preprocessor(
        dict(inputs=[inputs['inputs']], data_samples=[inputs['data_samples']]))
    with torch.no_grad():
        logits = alone(batch['inputs'], mode='tensor')
    assert int(logits.argmax()) == result['pred_label']

    # A fresh process that never imports mmpromptkd itself: the exported
    # config imports it and names our transforms by scope.
    fresh = subprocess.run(
        [sys.executable, '-c',
         'import sys; from mmpretrain.apis import '
         'ImageClassificationInferencer as I; '
         'r = I(sys.argv[1], pretrained=sys.argv[2], device="cpu")'
         '(sys.argv[3])[0]; print("pred", r["pred_label"])',
         str(tmp / 'student.py'), out, image],
        cwd=str(tmp), capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert f"pred {result['pred_label']}" in fresh.stdout

    # Never overwrites an earlier export.
    result = subprocess.run(
        [sys.executable, 'tools/model_converters/export_student.py', CONFIG,
         str(tmp / 'w' / 'epoch_1.pth'), out, '--cfg-options', *options],
        cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0 and 'student' in result.stdout + \
        result.stderr


@pytest.mark.slow
def test_export_never_overwrites_without_force(trained, capsys):
    tmp, data, options = trained
    checkpoint = str(tmp / 'w' / 'epoch_1.pth')
    main = load_tool('model_converters/export_student.py').main

    def export(out, *extra):
        main([CONFIG, checkpoint, str(out), *extra, '--cfg-options',
              *options])

    def refused(out) -> str:
        """The tool's last line when it refuses ``out`` (argparse)."""
        capsys.readouterr()
        with pytest.raises(SystemExit):
            export(out)
        return capsys.readouterr().err.strip().splitlines()[-1]

    # Weights named like their config: the config would replace them.
    same = tmp / 'same.py'
    assert 'same file' in refused(same)
    assert not same.exists()
    # A file of the user's where the config would go.
    mine = tmp / 'mine.py'
    mine.write_text('# my notes\n')
    assert str(mine) in refused(tmp / 'mine.pth')
    assert mine.read_text() == '# my notes\n'
    assert not (tmp / 'mine.pth').exists()
    export(tmp / 'mine.pth', '--force')
    assert mine.read_text() != '# my notes\n'
    assert list(load_exported_student(str(tmp / 'mine.pth')).class_names)


class _RunsCode:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.system, (f'touch {self.marker}', ))


def _documented_snippet() -> str:
    """The inference snippet of export_student.py's docstring."""
    doc = load_tool('model_converters/export_student.py').__doc__
    lines = doc.split('mmpretrain\'s inference API::\n', 1)[1].split('\n\n')
    return textwrap.dedent(lines[0]).strip()


@pytest.mark.slow
def test_documented_inference_snippet_is_safe(trained, monkeypatch):
    """Under TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 the documented snippet still
    refuses a student file that carries a payload."""
    tmp, data, options = trained
    out = tmp / 'snippet' / 'student.pth'
    out.parent.mkdir()
    export = load_tool('model_converters/export_student.py')
    export.main([CONFIG, str(tmp / 'w' / 'epoch_1.pth'), str(out),
                 '--cfg-options', *options])
    snippet = _documented_snippet()
    assert "pretrained='mmpromptkd://student.pth'" in snippet
    marker = tmp / 'snippet' / 'PAYLOAD_RAN'
    torch.save({'state_dict': {}, 'x': _RunsCode(marker)}, out)
    image = sorted(glob.glob(osp.join(data, 'images', '*', '*.png')))[0]
    monkeypatch.chdir(out.parent)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(Exception, match='refused to load'):
        exec(snippet.replace("'image.jpg'", repr(image)), {})
    assert not marker.exists()


@pytest.mark.parametrize('content, match', [
    (dict(state_dict={'student.x': torch.zeros(1)}), 'text_features'),
    ([1, 2, 3], 'holds a list'),
])
def test_export_names_what_the_checkpoint_lacks(tmp_path, content, match):
    path = tmp_path / 'ckpt.pth'
    torch.save(content, path)
    result = call_tool(REPO / 'tools/model_converters/export_student.py',
                       [CONFIG, path, tmp_path / 'out.pth'])
    assert result.returncode == 1
    assert str(path) in result.stdout and match in result.stdout
    assert 'Traceback' not in result.stdout.strip().splitlines()[-1]
