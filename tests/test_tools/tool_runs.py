"""Running the command-line tools in subprocesses, as a user does.

Shared by the tests of ``tests/test_tools``; the fixtures that use it (the
generated data and a trained work directory) are in ``conftest.py``.
"""
import contextlib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Sequence

from tool_scripts import REPO, TOOLS, load_tool

CONFIG = REPO / 'configs' / 'promptkd' / \
    'promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py'
TIMEOUT = 300


def run_tool(cmd: Sequence[str],
             cwd: Path,
             env: Dict[str, str] = None,
             timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """Run a command, stdout and stderr together in ``.stdout``.

    ``PYTHONPATH`` is cleared (the tools must find the package) unless
    ``env`` sets it; on timeout the whole process group is killed.
    """
    full_env = dict(os.environ)
    full_env.pop('PYTHONPATH', None)  # the tools must find the package
    full_env.update(env or {})
    # A session of its own: on timeout the whole process group goes, not
    # only the shell, so no torchrun worker outlives a hung test.
    proc = subprocess.Popen([str(c) for c in cmd],
                            cwd=cwd,
                            env=full_env,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            text=True,
                            start_new_session=True)
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout)


def call_tool(script: Path, args: Sequence) -> subprocess.CompletedProcess:
    """Run a tool's ``main`` in this process, as its ``__main__`` does.

    For tools that leave no global state behind (registries, distributed
    groups, signals); saves the ~5 s of imports of a fresh interpreter.

    Returns:
        CompletedProcess: The exit status (0, 1 after an error, as on the
        command line) and everything printed and logged in ``.stdout``.
    """
    from run_cli import reporting_run_errors
    module = load_tool(script)
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            with reporting_run_errors(Path(script).name):
                status = module.main([str(a) for a in args])
            code = status if isinstance(status, int) else 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
            if not isinstance(e.code, int):
                print(e.code)
    return subprocess.CompletedProcess([script, *args], code, out.getvalue())


def check_ok(result: subprocess.CompletedProcess) -> str:
    """The output of a run that must have succeeded."""
    assert result.returncode == 0, result.stdout[-6000:]
    return result.stdout


#: The option that lets a distiller use a teacher with random prompts.
UNTRAINED_TEACHER = 'model.allow_untrained_teacher=True'


def data_options(root: Path) -> List[str]:
    """``--cfg-options`` pointing every split's dataset at ``root``."""
    return [
        f'{split}_dataloader.dataset.data_root={root}'
        for split in ('train', 'val', 'test')
    ]


def train_cmd(config: Path,
              work_dir: Path,
              root: Path,
              max_epochs: int,
              *extra: str,
              batch_size: int = 8) -> List[str]:
    """``tools/train.py`` on ``config`` with the data under ``root``.

    A distiller config's teacher has random prompts here (no stage-(a)
    run), allowed explicitly.
    """
    untrained = [UNTRAINED_TEACHER] if Path(config).name.startswith(
        'promptkd') else []
    return [
        sys.executable, TOOLS / 'train.py', config, '--work-dir', work_dir,
        *extra, '--cfg-options', *data_options(root), *untrained,
        f'train_cfg.max_epochs={max_epochs}', 'train_cfg.val_interval=1',
        f'train_dataloader.batch_size={batch_size}', 'randomness.seed=0'
    ]


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run with ``threads`` torch threads; restore the count after."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
