"""SafeCheckpointHook: failed or killed saves never cost a good checkpoint.

Each case runs a small mmengine Runner (a linear model, 4 iterations, a
checkpoint after each) in a fresh process, with ``os.fsync`` failing with
ENOSPC ("No space left on device") for the checkpoints from a given
iteration on.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import errno, json, os, sys
import torch
from torch import nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
import mmpromptkd
from mmpromptkd.registry import MODELS

work_dir, hook_type, full_from = sys.argv[1], sys.argv[2], int(sys.argv[3])

@MODELS.register_module()
class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)
    def forward(self, inputs, data_samples=None, mode='tensor'):
        return dict(loss=self.fc(inputs).pow(2).mean())

real_fsync = os.fsync
def fsync(fd):
    # The disk is full from the checkpoint of iteration full_from on.
    name = os.path.basename(os.readlink(f'/proc/self/fd/{fd}'))
    step = name.split('.')[1].split('_')[-1] \
        if name.startswith('.mmpromptkd-iter_') \
        else None
    if step is not None and int(step) >= full_from:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real_fsync(fd)
os.fsync = fsync

runner = Runner(
    model=dict(type='ToyModel'), work_dir=work_dir,
    train_dataloader=dict(
        dataset=[dict(inputs=torch.ones(2))] * 4, batch_size=1,
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate')),
    train_cfg=dict(by_epoch=False, max_iters=4),
    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
    # mmengine's hook writes through the same atomic backend here, so the
    # two differ only in the order of their writes and removals.
    default_hooks=dict(checkpoint=dict(
        type=hook_type, by_epoch=False, interval=1, max_keep_ckpts=2,
        **(dict(backend_args=dict(backend='atomic_local'))
           if hook_type == 'CheckpointHook' else {}))),
    default_scope='mmpromptkd')
try:
    runner.train()
except OSError as e:
    print('ERROR:', e)
    sys.exit(3)
'''


def _run(tmp_path, hook_type, full_from):
    script = tmp_path / 'run.py'
    script.write_text(SCRIPT)
    work_dir = tmp_path / 'work_dir'
    result = subprocess.run(
        [sys.executable, str(script), str(work_dir), hook_type,
         str(full_from)], capture_output=True, text=True, cwd=REPO,
        timeout=300, env=dict(os.environ, OMP_NUM_THREADS='1'))
    return result, work_dir


def _loads(path):
    from mmpromptkd.utils import load_checkpoint_file
    return load_checkpoint_file(str(path))['meta']['iter']


@pytest.mark.slow
def test_disk_full_keeps_earlier_checkpoints(tmp_path):
    result, work_dir = _run(tmp_path, 'SafeCheckpointHook', full_from=3)
    assert result.returncode == 3, result.stderr[-3000:]
    assert 'could not write the checkpoint' in result.stdout
    assert str(work_dir / 'iter_3.pth') in result.stdout
    assert 'No space left on device' in result.stdout
    # max_keep_ckpts=2: both earlier checkpoints survive the failed save.
    assert sorted(p.name for p in work_dir.glob('*.pth')) == \
        ['iter_1.pth', 'iter_2.pth']
    assert [_loads(work_dir / f'iter_{i}.pth') for i in (1, 2)] == [1, 2]
    assert (work_dir / 'last_checkpoint').read_text() == \
        str(work_dir / 'iter_2.pth')
    assert not list(work_dir.glob('.mmpromptkd-*.tmp'))


@pytest.mark.slow
def test_mmengine_hook_loses_one(tmp_path):
    """What the default hook does in the same run (why ours exists)."""
    result, work_dir = _run(tmp_path, 'CheckpointHook', full_from=3)
    assert result.returncode == 3, result.stderr[-3000:]
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['iter_2.pth']


@pytest.mark.slow
def test_rotation_and_last_checkpoint(tmp_path):
    result, work_dir = _run(tmp_path, 'SafeCheckpointHook', full_from=99)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in work_dir.glob('*.pth')) == \
        ['iter_3.pth', 'iter_4.pth']
    assert (work_dir / 'last_checkpoint').read_text() == \
        str(work_dir / 'iter_4.pth')
    from mmpromptkd.utils import load_checkpoint_file
    hub = load_checkpoint_file(str(work_dir / 'iter_4.pth'))['message_hub']
    assert hub['runtime_info']['keep_ckpt_ids'] == [3, 4]


@pytest.mark.slow
def test_stale_temporaries_are_removed(tmp_path):
    work_dir = tmp_path / 'work_dir'
    work_dir.mkdir()
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    stale = work_dir / f'.mmpromptkd-iter_7.pth.{dead.pid}.tmp'
    live = work_dir / f'.mmpromptkd-iter_8.pth.{os.getpid()}.tmp'
    other = work_dir / '.notes.tmp'
    users = work_dir / f'.thesis-draft.{dead.pid}.tmp'
    for path in (stale, live, other, users):
        path.write_bytes(b'x' * 100)
    result, _ = _run(tmp_path, 'SafeCheckpointHook', full_from=99)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not stale.exists()
    assert live.exists() and other.exists() and users.exists()
