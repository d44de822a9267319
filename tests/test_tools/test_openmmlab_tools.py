"""OpenMMLab's own tools and APIs on our configs, each in a fresh process.

mmpretrain's scripts (``train.py``, ``test.py``, ``get_flops.py``,
``browse_dataset.py``, ``vis_scheduler.py``, ``print_config.py``,
``confusion_matrix.py``, ``analyze_logs.py``), mmpretrain's inference API,
and ``mim`` on an installed wheel. docs/openmmlab_tools.md lists them.
"""
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from mmengine.config import Config

from mmpromptkd.registry import MODELS
from tool_runs import (CONFIG, REPO, UNTRAINED_TEACHER, check_ok,
                       data_options, run_tool, train_cmd)
from tool_scripts import load_tool

MMPRETRAIN_RUNTIME = REPO / 'configs' / 'promptkd' / \
    'promptkd_tiny-clip_1xb32-5e_b2n-synthetic-shapes_mmpretrain-runtime.py'
PROMPTSRC = REPO / 'configs' / 'promptsrc' / \
    'promptsrc_tiny-clip_1xb32-16shot-5e_b2n-synthetic-shapes.py'


def _mmpretrain_tool(relative: str) -> Path:
    import mmpretrain
    script = Path(mmpretrain.__file__).parent / '.mim' / 'tools' / relative
    if not script.is_file():
        pytest.skip(f'{script} is not installed with mmpretrain')
    return script


def _python(code: str, cwd: Path):
    """Run ``code`` in a fresh interpreter; the JSON it prints last after
    ``RESULT`` (progress bars may follow it)."""
    out = check_ok(run_tool([sys.executable, '-c', code], cwd=cwd))
    return json.loads(out.rsplit('RESULT ', 1)[1].splitlines()[0])


def _flops(log: str) -> int:
    return int(re.search(r'Flops: \S+  \((\d+)\)', log).group(1))


def _params(log: str) -> int:
    return int(re.search(r'Params: \S+  \((\d+)\)', log).group(1))


@pytest.mark.slow
def test_get_flops_counts_the_student_and_the_training_forward(
        tmp_path, capsys):
    # mmpretrain's tool counts extract_feat (it raised NotImplementedError).
    script = _mmpretrain_tool('analysis_tools/get_flops.py')
    theirs = check_ok(
        run_tool([sys.executable, script, CONFIG, '--shape', '32'],
                 cwd=tmp_path))
    # Ours in this process, and the parameter counts of the built model.
    get_flops = load_tool('analysis/get_flops.py')
    ours = {}
    for stage in ('student', 'distill'):
        get_flops.main([str(CONFIG), '--stage', stage])
        ours[stage] = capsys.readouterr().out
    model = MODELS.build(Config.fromfile(str(CONFIG)).model)
    counts = [
        sum(p.numel() for p in m.parameters()) for m in (model, model.teacher)
    ]
    student_params, teacher_params = counts
    match = re.search(r'Flops: (\S+)\nParams: (\S+)', theirs)
    assert match.group(2) == f'{student_params / 1e6:.3f}M'
    assert _params(ours['student']) == student_params
    assert _params(ours['distill']) == student_params + teacher_params
    # The two counters agree on an inference; training adds the teacher.
    assert match.group(1) == f'{_flops(ours["student"]) / 1e6:.3f}M'
    assert _flops(ours['distill']) > 2 * _flops(ours['student']) > 0

    promptsrc = check_ok(
        run_tool([sys.executable, script, PROMPTSRC, '--shape', '32'],
                 cwd=tmp_path))
    assert 'Flops:' in promptsrc


@pytest.mark.slow
def test_browse_dataset_in_mmpretrain_scope(shapes_root, tmp_path):
    """mmpretrain's browse_dataset.py sets the mmpretrain scope; our
    datasets build there through their ``_scope_``. (Its other modes fail
    in mmpretrain 1.2.0's own plotting with current matplotlib.)"""
    script = _mmpretrain_tool('visualization/browse_dataset.py')
    out = tmp_path / 'shown'
    check_ok(
        run_tool([
            sys.executable, script, CONFIG, '--not-show', '-o', out, '-n',
            '3', '-m', 'original', '--cfg-options', *data_options(shapes_root)
        ],
                 cwd=tmp_path))
    assert len(list(out.glob('*.png'))) == 3


@pytest.mark.slow
def test_vis_scheduler(shapes_root, tmp_path):
    """It runs our hooks with a stand-in model and a mocked dataset; they
    must leave them alone (it crashed, then hung, before)."""
    script = _mmpretrain_tool('visualization/vis_scheduler.py')
    plot = tmp_path / 'lr.png'
    log = check_ok(
        run_tool([
            sys.executable, script, CONFIG, '--not-show', '--save-path', plot,
            '--dataset-size', '64', '--cfg-options',
            *data_options(shapes_root), 'train_cfg.max_epochs=6'
        ],
                 cwd=tmp_path,
                 timeout=120))
    assert plot.stat().st_size > 0
    assert '12/12 iters' in log  # 6 epochs of 64 / 32 batches


@pytest.mark.slow
def test_print_config_and_analyze_logs(trained, tmp_path):
    printed = check_ok(
        run_tool(
            [sys.executable,
             _mmpretrain_tool('misc/print_config.py'), CONFIG],
            cwd=tmp_path))
    assert "type='PromptKDDistiller'" in printed
    log = next(trained.glob('*/vis_data/*.json'))
    plot = tmp_path / 'loss.png'
    check_ok(
        run_tool([
            sys.executable,
            _mmpretrain_tool('analysis_tools/analyze_logs.py'), 'plot_curve',
            log, '--keys', 'loss_kd', '--out', plot
        ],
                 cwd=tmp_path))
    assert plot.stat().st_size > 0


@pytest.mark.slow
def test_mmpretrain_test_and_confusion_matrix(trained, shapes_root, tmp_path):
    """mmpretrain's test.py builds our runner (runner_type), which reads the
    checkpoint safely; confusion_matrix.py builds mmengine's plain Runner,
    whose torch.load refuses mmengine's own HistoryBuffer: the
    ``mmpromptkd://`` prefix selects our safe loader there."""
    checkpoint = trained / 'epoch_2.pth'
    log = check_ok(
        run_tool([
            sys.executable,
            _mmpretrain_tool('test.py'), CONFIG, checkpoint, '--work-dir',
            tmp_path / 'test', '--cfg-options', *data_options(shapes_root)
        ],
                 cwd=tmp_path))
    assert 'b2n/hm:' in log
    plot = tmp_path / 'cm.png'
    log = check_ok(
        run_tool([
            sys.executable,
            _mmpretrain_tool('analysis_tools/confusion_matrix.py'), CONFIG,
            f'mmpromptkd://{checkpoint}', '--show-path', plot,
            '--cfg-options', *data_options(shapes_root)
        ],
                 cwd=tmp_path))
    assert plot.stat().st_size > 0


@pytest.mark.slow
def test_inferencer_on_a_training_config(trained, shapes_root, tmp_path):
    """In a process that imports only mmpretrain: the config's scope and
    scoped transform names bring in our package."""
    images = sorted(str(p) for p in shapes_root.rglob('*.png'))[:3]
    result = (
        _python(
            'import json\n'
            'from mmpretrain.apis import ImageClassificationInferencer\n'
            'inferencer = ImageClassificationInferencer(\n'
            f'    {str(CONFIG)!r},\n'
            f'    pretrained="mmpromptkd://{trained / "epoch_2.pth"}")\n'
            f'out = inferencer({images!r})\n'
            'print("RESULT", json.dumps([[r["pred_class"], list(map(float, '
            'r["pred_scores"]))] for r in out]))\n', tmp_path))
    classes = [
        line.split(' ', 1)[1]
        for line in (shapes_root / 'classnames.txt').read_text().splitlines()
    ]
    assert len(result) == 3
    for name, scores in result:
        assert len(scores) == len(classes)
        assert sum(scores) == pytest.approx(1.0, abs=1e-5)
        assert name == classes[max(range(len(scores)), key=scores.__getitem__)]


@pytest.mark.slow
def test_mmpretrain_runtime_config_trains(shapes_root, tmp_path):
    """The docs' mixing example is this config, and mmpretrain's own
    train.py trains it (the distiller, datasets and metric built in our
    scope under mmpretrain's default scope)."""
    text = MMPRETRAIN_RUNTIME.read_text()
    assert f'```python\n{text}```' in (
        REPO / 'docs' / 'openmmlab_tools.md').read_text()
    work_dir = tmp_path / 'w'
    cmd = train_cmd(MMPRETRAIN_RUNTIME, work_dir, shapes_root, 1)
    cmd[1] = _mmpretrain_tool('train.py')
    log = check_ok(run_tool(cmd, cwd=tmp_path))
    assert 'Stored teacher text features of 6 classes' in log
    assert 'b2n/hm:' in log
    assert (work_dir / 'epoch_1.pth').is_file()


def _install_wheel(tmp_path: Path) -> Path:
    """Build a wheel from a copy of the checkout, install it in a folder."""
    source = tmp_path / 'source'
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns('.git', 'work_dirs', 'data', 'build',
                                      '*.egg-info', '.mim', '__pycache__',
                                      '.pytest_cache', '.hypothesis'))
    # A user's CLIP file beside the tiny ones must not enter the wheel.
    (source / 'checkpoints' / 'clip').mkdir(exist_ok=True)
    (source / 'checkpoints' / 'clip' / 'ViT-L-14.pt').write_bytes(b'x')
    # Links an install of the clone left in .mim (this one of an earlier
    # layout): the build replaces them, never deleting through them.
    (source / 'mmpromptkd' / '.mim').mkdir()
    (source / 'mmpromptkd' / '.mim' / 'checkpoints').symlink_to(
        '../../checkpoints')
    wheels = tmp_path / 'wheels'
    check_ok(
        run_tool([
            sys.executable, '-m', 'pip', 'wheel', '--no-deps',
            '--no-build-isolation', '-q', '-w', wheels, '.'
        ],
                 cwd=source))
    tiny = Path('checkpoints') / 'tiny_clip'
    for path in (REPO / tiny).iterdir():
        copy = source / tiny / path.name
        assert not copy.is_symlink() and \
            copy.read_bytes() == path.read_bytes(), copy
    site = tmp_path / 'site'
    check_ok(
        run_tool([
            sys.executable, '-m', 'pip', 'install', '--no-deps', '-q',
            '--target', site, *wheels.glob('mmpromptkd-*.whl')
        ],
                 cwd=tmp_path))
    return site


@pytest.mark.slow
def test_mim_on_an_installed_wheel(shapes_root, tmp_path):
    """``mim list / search / train / test`` find the package, its model
    index, configs and tools in ``mmpromptkd/.mim`` of a regular install."""
    mim = shutil.which('mim')
    if mim is None:
        pytest.skip('openmim is not installed (pip install -e ".[tests]")')
    site = _install_wheel(tmp_path)
    mim_dir = site / 'mmpromptkd' / '.mim'
    for name in ('configs', 'tools', 'checkpoints/tiny_clip',
                 'model-index.yml'):
        assert (mim_dir / name).exists() and not (mim_dir / name).is_symlink()
    assert [p.name for p in (mim_dir / 'checkpoints').iterdir()] == \
        ['tiny_clip']
    env = dict(PYTHONPATH=str(site))
    listed = check_ok(run_tool([mim, 'list'], cwd=tmp_path, env=env))
    assert re.search(r'^mmpromptkd\s+\d', listed, re.M)
    found = check_ok(
        run_tool([mim, 'search', 'mmpromptkd', '--field', 'config'],
                 cwd=tmp_path,
                 env=env))
    assert CONFIG.stem in found

    # By config name only: mim finds it in the installed package.
    work_dir = tmp_path / 'w'
    log = check_ok(
        run_tool([
            mim, 'train', 'mmpromptkd', CONFIG.name, '--gpus', '0',
            '--work-dir', work_dir, '--cfg-options', *data_options(
                shapes_root), 'train_cfg.max_epochs=1', UNTRAINED_TEACHER,
            'train_dataloader.batch_size=8'
        ],
                 cwd=tmp_path,
                 env=env))
    assert str(mim_dir / 'tools' / 'train.py') in log
    assert (work_dir / 'epoch_1.pth').is_file()
    log = check_ok(
        run_tool([
            mim, 'test', 'mmpromptkd', CONFIG.name, '--checkpoint',
            work_dir / 'epoch_1.pth', '--gpus', '0', '--work-dir',
            tmp_path / 't', '--cfg-options', *data_options(shapes_root)
        ],
                 cwd=tmp_path,
                 env=env))
    assert 'b2n/hm:' in log
    assert os.path.isdir(tmp_path / 't')
