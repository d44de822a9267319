"""Compatibility patches: atomic local writes of checkpoints."""
import os

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import save_checkpoint

import mmpromptkd  # noqa: F401
from mmpromptkd.utils import save_checkpoint_file


def test_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint({'state_dict': {'w': torch.ones(2)}}, str(path))
    good = path.read_bytes()

    def crash(fd):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(OSError, match='disk full'):
        save_checkpoint({'state_dict': {'w': torch.zeros(2)}}, str(path))
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # no temporary left


def test_text_files_are_atomic_too(tmp_path):
    backend = get_file_backend(str(tmp_path / 'last_checkpoint'))
    backend.put_text('epoch_3.pth', str(tmp_path / 'last_checkpoint'))
    assert (tmp_path / 'last_checkpoint').read_text() == 'epoch_3.pth'


def test_save_checkpoint_file_refuses_overwrite(tmp_path):
    path = tmp_path / 'x.pth'
    save_checkpoint_file({'a': torch.ones(1)}, str(path))
    with pytest.raises(FileExistsError, match='x.pth'):
        save_checkpoint_file({'a': torch.zeros(1)}, str(path))
    assert torch.load(path)['a'].item() == 1.0
    save_checkpoint_file({'a': torch.zeros(1)}, str(path), overwrite=True)
    assert torch.load(path)['a'].item() == 0.0
