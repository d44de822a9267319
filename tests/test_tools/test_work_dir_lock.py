"""One run per work directory: a second run fails at once, naming the first.

The holder runs in its own process (a file lock is per process); the lock
ends with it, so a killed run never blocks the next.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mmengine.config import Config

from run_cli import lock_work_dir

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs/promptkd' / \
    'promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py'

HOLD = '''
import sys, time
from mmengine.config import Config
sys.path.insert(0, 'tools/misc')
from run_cli import lock_work_dir
lock = lock_work_dir(Config(dict(work_dir=sys.argv[1])))
print('locked', flush=True)
time.sleep(600)
'''


@pytest.fixture
def holder(tmp_path):
    work_dir = tmp_path / 'work_dir'
    proc = subprocess.Popen([sys.executable, '-c', HOLD, str(work_dir)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO,
                            env=dict(os.environ, RANK='0'))
    assert proc.stdout.readline().strip() == 'locked'
    yield work_dir, proc
    proc.kill()
    proc.wait()


@pytest.mark.slow
def test_second_run_fails_naming_the_holder(holder, monkeypatch):
    work_dir, proc = holder
    monkeypatch.delenv('RANK', raising=False)
    with pytest.raises(RuntimeError, match=f'process {proc.pid} on') as e:
        lock_work_dir(Config(dict(work_dir=str(work_dir))))
    assert str(work_dir) in str(e.value)


@pytest.mark.slow
def test_killed_holder_does_not_block(holder, monkeypatch):
    work_dir, proc = holder
    monkeypatch.delenv('RANK', raising=False)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lock = lock_work_dir(Config(dict(work_dir=str(work_dir))))
    assert lock.is_locked
    lock.release()


@pytest.mark.slow
def test_only_rank_zero_locks(holder, monkeypatch):
    work_dir, _ = holder
    monkeypatch.setenv('RANK', '1')
    assert lock_work_dir(Config(dict(work_dir=str(work_dir)))) is None


def test_dangling_symlink_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv('RANK', raising=False)
    link = tmp_path / 'work_dir'
    link.symlink_to(tmp_path / 'gone')
    with pytest.raises(FileNotFoundError, match='symbolic link to .*gone'):
        lock_work_dir(Config(dict(work_dir=str(link))))


@pytest.mark.slow
def test_train_tool_refuses_a_held_work_dir(holder, tmp_path):
    work_dir, proc = holder
    start = time.time()
    env = {k: v for k, v in os.environ.items() if k != 'RANK'}
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools/train.py'), str(CONFIG),
         '--work-dir', str(work_dir)], capture_output=True, text=True,
        cwd=tmp_path, timeout=300, env=env)
    assert result.returncode != 0
    assert f'is in use by another run (process {proc.pid}' in result.stderr
    # Refused before anything was built.
    assert time.time() - start < 120
    assert not list(work_dir.glob('*/'))
