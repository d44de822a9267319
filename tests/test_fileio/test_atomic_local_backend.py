"""The atomic local file backend and the writer behind it."""
import os

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import save_checkpoint

from mmpromptkd.fileio import AtomicLocalBackend, atomic_write
from mmpromptkd.utils import save_checkpoint_file

ATOMIC = dict(backend='atomic_local')


def _crash(fd):
    raise OSError('disk full')


def test_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint({'state_dict': {'w': torch.ones(2)}}, str(path),
                    backend_args=ATOMIC)
    good = path.read_bytes()
    monkeypatch.setattr(os, 'fsync', _crash)
    with pytest.raises(OSError, match='disk full'):
        save_checkpoint({'state_dict': {'w': torch.zeros(2)}}, str(path),
                        backend_args=ATOMIC)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # no temporary left


def test_selected_by_name_only(tmp_path):
    target = str(tmp_path / 'last_checkpoint')
    backend = get_file_backend(target, backend_args=ATOMIC)
    assert isinstance(backend, AtomicLocalBackend)
    backend.put_text('epoch_3.pth', target)
    assert (tmp_path / 'last_checkpoint').read_text() == 'epoch_3.pth'
    # mmengine's own choice for a local path is untouched.
    assert type(get_file_backend(target)).__name__ == 'LocalBackend'


def test_text_and_bytes(tmp_path, monkeypatch):
    path = tmp_path / 'a' / 'b.txt'
    atomic_write('héllo', str(path))
    assert path.read_text(encoding='utf-8') == 'héllo'
    monkeypatch.setattr(os, 'fsync', _crash)
    with pytest.raises(OSError):
        atomic_write(b'other', str(path))
    assert path.read_text(encoding='utf-8') == 'héllo'
    assert os.listdir(path.parent) == ['b.txt']


def test_save_checkpoint_file_refuses_overwrite(tmp_path):
    path = tmp_path / 'x.pth'
    save_checkpoint_file({'a': torch.ones(1)}, str(path))
    with pytest.raises(FileExistsError, match='x.pth'):
        save_checkpoint_file({'a': torch.zeros(1)}, str(path))
    assert torch.load(path)['a'].item() == 1.0
    save_checkpoint_file({'a': torch.zeros(1)}, str(path), overwrite=True)
    assert torch.load(path)['a'].item() == 0.0


def test_exclusive_never_replaces(tmp_path, monkeypatch):
    path = tmp_path / 'cache.json'
    atomic_write('first', str(path), exclusive=True)
    with pytest.raises(FileExistsError):
        atomic_write('second', str(path), exclusive=True)
    assert path.read_text() == 'first'

    def no_links(src, dst):
        raise OSError('hard links not supported')

    # Without hard links the existing file is still kept.
    monkeypatch.setattr(os, 'link', no_links)
    with pytest.raises(FileExistsError):
        atomic_write('third', str(path), exclusive=True)
    atomic_write('fourth', str(tmp_path / 'new.json'), exclusive=True)
    assert path.read_text() == 'first'
    assert sorted(os.listdir(tmp_path)) == ['cache.json', 'new.json']


def test_temporary_name_is_the_documented_pattern(tmp_path, monkeypatch):
    """SafeCheckpointHook finds leftovers of killed runs by this pattern."""
    from mmpromptkd.fileio import TEMPORARY_NAME
    seen = []
    real_replace = os.replace

    def record(src, dst):
        seen.append(os.path.basename(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, 'replace', record)
    atomic_write(b'x', str(tmp_path / 'epoch_1.pth'))
    assert len(seen) == 1
    assert TEMPORARY_NAME.match(seen[0]).group(1) == str(os.getpid())
