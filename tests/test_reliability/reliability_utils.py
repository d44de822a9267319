"""Helpers of the reliability tests: runs of the tools, configs, faults.

Subprocess runs use one thread each (``OMP_NUM_THREADS=1``): runs that are
compared weight for weight must sum in the same order, and several runs
share the few cores.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / 'tools'
CONFIG = REPO / 'configs' / 'promptkd' / \
    'promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py'
# Keys of the trained parameters (and the projector's BN buffers).
TRAINED_PREFIXES = ('student.vision', 'projector.')
FAULTS_MODULE = 'reliability_faults'
# Random CLIP weights: what is tested here does not depend on pre-trained
# ones, and the runs need no weight file.
# The teacher's prompts are random too (no stage-(a) run), allowed
# explicitly.
RANDOM_WEIGHTS = [
    'model.student.clip.checkpoint=None', 'model.teacher.clip.checkpoint=None',
    'model.allow_untrained_teacher=True'
]
RANDOM_WEIGHTS_CONFIG = '''
model = dict(
    allow_untrained_teacher=True,
    student=dict(clip=dict(checkpoint=None)),
    teacher=dict(clip=dict(checkpoint=None)))
'''

# The fault-injection hook, written into a temporary folder and imported by
# the runs through ``custom_imports``. Iterations are 1-based.
FAULTS_SOURCE = '''
"""Fault injection for the reliability tests."""
import builtins
import math
import os
import time

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmpromptkd.registry import HOOKS

_open = builtins.open


def _write_atomic(path, text):
    tmp = f'{path}.{os.getpid()}.tmp'
    with _open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


class _StallingFile:
    """A file whose first write stops halfway, flushed, and waits."""

    def __init__(self, file, marker, pause_s):
        self._file, self._marker, self._pause_s = file, marker, pause_s

    def write(self, data):
        half = len(data) // 2
        self._file.write(data[:half])
        self._file.flush()
        os.fsync(self._file.fileno())
        _write_atomic(self._marker, self._file.name)
        time.sleep(self._pause_s)
        return self._file.write(data[half:]) + half

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()

    def __getattr__(self, name):
        return getattr(self._file, name)


@HOOKS.register_module()
class FaultInjectionHook(Hook):
    """Reports progress; injects one fault at a given iteration."""

    priority = 'LOWEST'

    def __init__(self, state_dir, stall_write_at=None, poison_at=None,
                 die_at=None, rank=1, pause_s=600):
        self.state_dir = state_dir
        self.stall_write_at = stall_write_at
        self.poison_at = poison_at
        self.die_at = die_at
        self.rank = rank
        self.pause_s = pause_s
        os.makedirs(state_dir, exist_ok=True)

    def _mark(self, name, text):
        _write_atomic(os.path.join(self.state_dir, name), text)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        it = runner.iter + 1
        if get_rank() == 0:
            self._mark('progress', str(it))
        if it == self.poison_at:
            model = runner.model.module if is_model_wrapper(
                runner.model) else runner.model
            model.distill_loss.loss_weight = math.inf
        if it == self.die_at and get_rank() == self.rank:
            self._mark('died', repr(time.time()))
            os._exit(3)

    def before_save_checkpoint(self, runner, checkpoint):
        # The next file opened for writing in the work directory is the
        # checkpoint itself (or its temporary file): stall inside it.
        if checkpoint['meta'].get('iter') != self.stall_write_at:
            return
        marker = os.path.join(self.state_dir, 'writing')
        work_dir = os.path.abspath(runner.work_dir)

        def stalling_open(file, mode='r', *args, **kwargs):
            f = _open(file, mode, *args, **kwargs)
            if 'w' in mode and os.path.abspath(str(file)).startswith(
                    work_dir) and builtins.open is stalling_open:
                builtins.open = _open
                return _StallingFile(f, marker, self.pause_s)
            return f

        builtins.open = stalling_open
'''


def write_faults_module(folder: Path) -> Path:
    """Write the fault-injection module into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f'{FAULTS_MODULE}.py'
    path.write_text(FAULTS_SOURCE)
    return folder


def write_run_config(path: Path,
                     data_root: Path,
                     state_dir: Path,
                     fault: Optional[Dict] = None,
                     max_epochs: int = 3,
                     batch_size: int = 4,
                     checkpoint_interval: int = 4,
                     extra: str = '') -> Path:
    """Write a small config: the tiny CPU config with fault injection.

    Checkpoints are written every ``checkpoint_interval`` iterations,
    validation is off (it does not change the weights), and the hooks are
    those of the tiny config plus :class:`RandomStateHook` and the fault
    injection.

    Args:
        path (Path): Config file to write.
        data_root (Path): The synthetic-shapes folder.
        state_dir (Path): Where the injection hook reports progress.
        fault (dict, optional): Arguments of ``FaultInjectionHook``.
        max_epochs (int): Epochs. Defaults to 3.
        batch_size (int): Batch size per process. Defaults to 4.
        checkpoint_interval (int): Iterations between checkpoints.
            Defaults to 4.
        extra (str): More config lines. Defaults to ''.

    Returns:
        Path: ``path``.
    """
    hook = dict(type='FaultInjectionHook', state_dir=str(state_dir))
    hook.update(fault or {})
    path.write_text(f'''
_base_ = {str(CONFIG)!r}
custom_imports = dict(imports=[{FAULTS_MODULE!r}], allow_failed_imports=False)
custom_hooks = [
    dict(type='PromptKDTextFeaturesHook'),
    dict(type='NonFiniteLossHook'),
    dict(type='RandomStateHook'),
    {hook!r},
]
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval={checkpoint_interval}),
    logger=dict(interval=1))
train_cfg = dict(max_epochs={max_epochs}, val_interval=1000)
train_dataloader = dict(
    batch_size={batch_size}, dataset=dict(data_root={str(data_root)!r}))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = dict(dataset=dict(data_root={str(data_root)!r}))
randomness = dict(seed=0)
{RANDOM_WEIGHTS_CONFIG}
{extra}
''')
    return path


def subprocess_env(plugin_dir: Path,
                   extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment of a tool run: one thread, the fault module importable."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(plugin_dir), OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    env.update(extra or {})
    return env


def start(cmd: Sequence, cwd: Path, env: Dict[str, str],
          log: Path) -> subprocess.Popen:
    """Start a command, stdout and stderr into ``log``."""
    with open(log, 'w') as out:
        return subprocess.Popen([str(c) for c in cmd],
                                cwd=cwd,
                                env=env,
                                stdout=out,
                                stderr=subprocess.STDOUT,
                                start_new_session=True)


def train_cmd(config: Path, work_dir: Path, *extra: str) -> List:
    return [sys.executable, TOOLS / 'train.py', config, '--work-dir',
            work_dir, *extra]


def dist_train_cmd(config: Path, work_dir: Path, *extra: str) -> List:
    return ['bash', TOOLS / 'dist_train.sh', config, '2', '--work-dir',
            work_dir, *extra]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for(predicate, proc: subprocess.Popen, timeout: float,
             what: str, log: Path, poll: float = 0.02) -> None:
    """Poll ``predicate`` until true; fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f'the run ended (code {proc.returncode}) '
                                 f'before {what}:\n{tail(log)}')
        if time.monotonic() > deadline:
            kill_group(proc)
            raise AssertionError(f'timed out waiting for {what}:\n'
                                 f'{tail(log)}')
        time.sleep(poll)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a run started by :func:`start` and all of its children."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def read_int(path: Path) -> int:
    try:
        return int(path.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def tail(log: Path, chars: int = 6000) -> str:
    try:
        return log.read_text(errors='replace')[-chars:]
    except FileNotFoundError:
        return '<no log>'


def trained_state(path: Path) -> Dict[str, torch.Tensor]:
    """Student prompts and projector of a checkpoint, loaded safely."""
    from mmpromptkd.utils import load_checkpoint_file
    state = load_checkpoint_file(str(path))['state_dict']
    return {
        k: v
        for k, v in state.items()
        if k.startswith(TRAINED_PREFIXES) and v.is_floating_point()
    }


def max_difference(a: Dict[str, torch.Tensor],
                   b: Dict[str, torch.Tensor]) -> float:
    """Largest absolute difference between two trained states."""
    assert a.keys() == b.keys()
    assert any(k.startswith('student.vision') for k in a)
    assert any(k.startswith('projector.') for k in a)
    return max((a[k] - b[k]).abs().max().item() for k in a)
