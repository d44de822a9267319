"""Safe checkpoint loading: allowlisted mmengine objects load, code not."""
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

import mmpromptkd  # noqa: F401
from mmpromptkd.utils import (is_torchscript_archive, load_checkpoint_file,
                              read_torchscript_state_dict)


class _RunsCode:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class _GetattrChain:
    """Reaches os.system through getattr, which is not generally allowed."""

    def __reduce__(self):
        return (getattr, (torch.nn.Module, '__init__'))


class TestSafeLoading:

    def test_code_in_checkpoint_is_refused(self, tmp_path):
        marker = tmp_path / 'pwned'
        path = tmp_path / 'evil.pth'
        torch.save({'state_dict': {}, 'x': _RunsCode(marker)}, path)
        with pytest.raises(pickle.UnpicklingError, match='refused to load'):
            load_checkpoint_file(str(path))
        # torch.load's default is safe too once mmpromptkd is imported.
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path)
        assert not marker.exists()

    def test_getattr_is_restricted(self, tmp_path):
        torch.save({'x': _GetattrChain()}, tmp_path / 'g.pth')
        with pytest.raises(pickle.UnpicklingError):
            load_checkpoint_file(str(tmp_path / 'g.pth'))

    def test_unsafe_opt_in(self, tmp_path):
        torch.save({'x': _GetattrChain()}, tmp_path / 'g.pth')
        loaded = load_checkpoint_file(
            str(tmp_path / 'g.pth'), allow_unsafe=True)
        assert loaded['x'] is torch.nn.Module.__init__

    def test_mmengine_objects_load(self, tmp_path):
        buffer = HistoryBuffer()
        buffer.update(1.5)
        buffer.update(2.5)
        ckpt = {
            'meta': {
                'seed': np.int64(3),
                'scalar': np.float64(0.5)
            },
            'message_hub': {
                'log_scalars': {
                    'loss': buffer
                },
                'arr': np.arange(4, dtype=np.float32)
            },
        }
        torch.save(ckpt, tmp_path / 'c.pth')
        loaded = load_checkpoint_file(str(tmp_path / 'c.pth'))
        assert loaded['message_hub']['log_scalars']['loss'].mean() == 2.0
        assert loaded['meta']['seed'] == 3
        np.testing.assert_array_equal(loaded['message_hub']['arr'],
                                      np.arange(4, dtype=np.float32))

    def test_history_buffer_written_by_old_mmengine(self, tmp_path,
                                                    monkeypatch):
        """Checkpoints that pickle getattr(HistoryBuffer, 'min') still load."""
        buffer = HistoryBuffer()
        buffer.update(4.0)

        def old_getstate(self):
            # What mmengine 0.10.7 itself writes.
            return dict(
                self.__dict__, statistics_methods=self._statistics_methods)

        monkeypatch.setattr(HistoryBuffer, '__getstate__', old_getstate)
        torch.save({'b': buffer}, tmp_path / 'old.pth')
        monkeypatch.undo()
        with zipfile.ZipFile(tmp_path / 'old.pth') as z:
            data = z.read([n for n in z.namelist()
                           if n.endswith('data.pkl')][0])
        assert b'getattr' in data
        loaded = load_checkpoint_file(str(tmp_path / 'old.pth'))['b']
        assert loaded.current() == 4.0
        # HistoryBuffer itself is mmengine's, unchanged: what it writes now
        # is what it wrote then, and loads the same way.
        torch.save({'b': buffer}, tmp_path / 'new.pth')
        with zipfile.ZipFile(tmp_path / 'new.pth') as z:
            data = z.read([n for n in z.namelist()
                           if n.endswith('data.pkl')][0])
        assert b'getattr' in data
        assert load_checkpoint_file(str(tmp_path /
                                        'new.pth'))['b'].current() == 4.0
        # Outside our loads, torch's global allowlist does not know it.
        with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
            torch.load(tmp_path / 'new.pth', weights_only=True)

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match='none.pth'):
            load_checkpoint_file(str(tmp_path / 'none.pth'))


class TestTorchScriptReader:

    def test_reads_tensors_without_running_code(self, tmp_path):
        model = torch.nn.Sequential(
            torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        model.register_buffer('scale', torch.tensor([2.0]))
        scripted = torch.jit.script(model)
        scripted.save(str(tmp_path / 'm.pt'))
        assert is_torchscript_archive(str(tmp_path / 'm.pt'))
        state = read_torchscript_state_dict(str(tmp_path / 'm.pt'))
        for key, value in model.state_dict().items():
            torch.testing.assert_close(state[key], value)

    def test_foreign_global_is_refused(self, tmp_path):
        model = torch.jit.script(torch.nn.Linear(2, 2))
        model.save(str(tmp_path / 'm.pt'))
        # Rewrite data.pkl so that it references os.system.
        src = zipfile.ZipFile(tmp_path / 'm.pt')
        with zipfile.ZipFile(tmp_path / 'evil.pt', 'w') as dst:
            for item in src.namelist():
                data = src.read(item)
                if item.endswith('/data.pkl'):
                    data = pickle.dumps(
                        _RunsCode(tmp_path / 'pwned'), protocol=2)
                dst.writestr(item, data)
        with pytest.raises(pickle.UnpicklingError, match='posix.system|os'):
            read_torchscript_state_dict(str(tmp_path / 'evil.pt'))
        assert not (tmp_path / 'pwned').exists()

    def test_plain_checkpoint_is_not_torchscript(self, tmp_path):
        torch.save({'a': torch.zeros(1)}, tmp_path / 'p.pth')
        assert not is_torchscript_archive(str(tmp_path / 'p.pth'))


def test_model_checkpoints_load_onto_the_cpu(tmp_path, monkeypatch):
    """Teacher and prompt checkpoints saved on a GPU load on a CPU host."""
    from mmpromptkd.utils import read_model_checkpoint
    path = str(tmp_path / 'prompts.pth')
    torch.save(dict(state_dict=dict(w=torch.ones(2)), meta=dict(epoch=1)),
               path)
    seen, load = [], torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get('map_location'))
        return load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy)
    state, meta = read_model_checkpoint(path, 'PromptedCLIP')
    assert seen == ['cpu'] and meta == dict(epoch=1)
    assert torch.equal(state['w'], torch.ones(2))
    torch.save([1, 2], path)
    with pytest.raises(ValueError, match='expected a state dict of P'):
        read_model_checkpoint(path, 'PromptedCLIP')
