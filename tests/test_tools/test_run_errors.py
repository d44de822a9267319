"""How train.py / test.py end: the error's message last, never a bare trace."""
import os.path as osp

import pytest

from run_cli import load_config, reporting_run_errors
from tool_runs import CONFIG, REPO
from tool_scripts import load_tool

MMPRETRAIN_RUNTIME = REPO / 'configs' / 'promptkd' / \
    'promptkd_tiny-clip_1xb32-5e_b2n-synthetic-shapes_mmpretrain-runtime.py'


def test_a_mistyped_config_names_the_closest_one(monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as stop:
        load_config('configs/promptkd/promptkd_tiny-clip_1xb32-20e_b2n-'
                    'synthetic-shape.py', 'train.py')
    assert str(stop.value) == (
        'train.py: error: config file configs/promptkd/promptkd_tiny-clip_'
        '1xb32-20e_b2n-synthetic-shape.py does not exist; did you mean '
        'configs/promptkd/promptkd_tiny-clip_1xb32-20e_b2n-synthetic-'
        'shapes.py?')


def test_nothing_close_gives_no_guess(tmp_path):
    with pytest.raises(SystemExit) as stop:
        load_config(str(tmp_path / 'zzzz.py'), 'test.py')
    assert str(stop.value).endswith('zzzz.py does not exist')


def test_an_error_ends_with_its_one_line_message(capsys):
    with pytest.raises(SystemExit) as stop:
        with reporting_run_errors('test.py'):
            raise FileNotFoundError('data_root nowhere is not a folder')
    assert str(stop.value) == ('test.py: error: FileNotFoundError: '
                               'data_root nowhere is not a folder')
    # The traceback comes first, for a bug report.
    assert 'Traceback' in capsys.readouterr().err


def test_ctrl_c_says_where_the_run_stopped(capsys):
    from mmengine.logging import MessageHub

    # The runtime information a Runner's RuntimeInfoHook keeps.
    hub = MessageHub.get_instance('test_ctrl_c_says_where_the_run_stopped')
    hub.update_info('epoch', 2)
    hub.update_info('iter', 17)
    with pytest.raises(SystemExit) as stop:
        with reporting_run_errors('train.py'):
            raise KeyboardInterrupt
    assert stop.value.code == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        'train.py: stopped in epoch 3, after iteration 17; continue from '
        'the last checkpoint with --resume')
    assert 'Traceback' not in err


def test_two_runs_in_one_second_keep_their_own_scope_and_log(
        tmp_path, monkeypatch):
    """Two configs run in one process within one second (the dry run, a
    notebook) each log into their own file and build in their own scope."""
    import time

    from run_cli import build_runner
    monkeypatch.setattr(time, 'time', lambda: 1.8e9)  # the same second
    runners = []
    for name, config in (('a', MMPRETRAIN_RUNTIME), ('b', CONFIG)):
        (tmp_path / name).mkdir()
        load_config(str(config), 'train.py').dump(
            str(tmp_path / name / 'config.py'))
        cfg = load_config(str(tmp_path / name / 'config.py'), 'train.py')
        cfg.work_dir = str(tmp_path / name)
        runners.append(build_runner(cfg))
    first, second = runners
    assert first.experiment_name != second.experiment_name
    assert second.default_scope.scope_name == 'mmpromptkd'
    assert second.logger.log_file.startswith(str(tmp_path / 'b'))
    assert 'experiment_name' not in second.cfg  # nor in its dumped config


@pytest.mark.parametrize('tool, extra', [
    ('misc/cache_teacher_logits.py', []),
    ('model_converters/export_student.py', ['x.pth', 'OUT']),
    ('analysis/get_flops.py', []),
])
def test_every_config_tool_names_the_closest_config(tool, extra, tmp_path,
                                                    monkeypatch):
    monkeypatch.chdir(REPO)
    main = load_tool(tool).main
    typo = ('configs/promptkd/promptkd_tiny-clip_1xb32-20e_b2n-'
            'synthetic-shape.py')
    args = [str(tmp_path / 'student.pth') if a == 'OUT' else a
            for a in extra]
    with pytest.raises(SystemExit) as stop:
        main([typo, *args])
    assert str(stop.value).endswith(
        'did you mean configs/promptkd/promptkd_tiny-clip_1xb32-20e_b2n-'
        'synthetic-shapes.py?')
    assert str(stop.value).startswith(osp.basename(tool))


@pytest.mark.parametrize('checkpoint, hint', [
    (None, 'no checkpoint was written yet: --resume would start over from '
     'the beginning'),
    ('epoch_1.pth', 'continue from the last checkpoint with --resume'),
])
def test_ctrl_c_says_whether_resume_would_continue(checkpoint, hint, tmp_path,
                                                   capsys):
    from mmengine.config import Config
    from mmengine.logging import MessageHub

    from run_cli import hinting_how_to_continue
    hub = MessageHub.get_instance(f'test_ctrl_c_before_{checkpoint}')
    hub.update_info('epoch', 0)
    hub.update_info('iter', 3)
    if checkpoint:
        (tmp_path / checkpoint).write_bytes(b'')
    cfg = Config(dict(work_dir=str(tmp_path)))
    with pytest.raises(SystemExit) as stop:
        with reporting_run_errors('train.py'), hinting_how_to_continue(cfg):
            raise KeyboardInterrupt
    assert stop.value.code == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f'train.py: stopped in epoch 1, after iteration 3; {hint}')
