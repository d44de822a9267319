"""What an allowlisted object in a checkpoint may do: nothing outside itself.

mmengine's HistoryBuffer restores ``statistics_methods`` from its state into
the *class*; a crafted checkpoint must not reach the class, nor widen what
the restricted ``getattr`` resolves.
"""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

import mmpromptkd  # noqa: F401
from mmpromptkd.utils import load_checkpoint_file


def _save_with_statistics(path, methods, monkeypatch, **extra_state):
    """A checkpoint whose buffer carries ``methods`` as its statistics."""
    buffer = HistoryBuffer([1.0, 2.0, 3.0], [1, 1, 1])
    buffer.__dict__.update(extra_state)
    with monkeypatch.context() as patch:
        patch.setattr(HistoryBuffer, '_statistics_methods', dict(methods))
        torch.save({'message_hub': {'loss': buffer}}, path)


def _defaults():
    return {name: getattr(HistoryBuffer, name)
            for name in ('min', 'max', 'current', 'mean')}


def test_a_state_cannot_rebind_a_statistic_of_the_class(tmp_path,
                                                        monkeypatch):
    path = tmp_path / 'rebind.pth'
    _save_with_statistics(
        path, dict(_defaults(), mean=HistoryBuffer.max), monkeypatch)
    with pytest.raises(pickle.UnpicklingError,
                       match="statistics_methods.*'mean'"):
        load_checkpoint_file(str(path))
    assert HistoryBuffer([1, 2, 3], [1, 1, 1]).statistics('mean') == 2.0
    assert HistoryBuffer._statistics_methods['mean'] is HistoryBuffer.mean


def test_a_state_cannot_add_a_statistic(tmp_path, monkeypatch):
    path = tmp_path / 'add.pth'
    _save_with_statistics(
        path, dict(_defaults(), extra=HistoryBuffer.max), monkeypatch)
    with pytest.raises(pickle.UnpicklingError, match="'extra'"):
        load_checkpoint_file(str(path))
    assert 'extra' not in HistoryBuffer._statistics_methods


@pytest.mark.parametrize('state, key', [
    (dict(_unexpected=1), '_unexpected'),
    (dict(max_length='many'), 'max_length'),
    (dict(_log_history=[1.0, 2.0, 3.0]), '_log_history'),
])
def test_only_known_keys_and_types(tmp_path, monkeypatch, state, key):
    path = tmp_path / 'state.pth'
    _save_with_statistics(path, _defaults(), monkeypatch, **state)
    with pytest.raises(pickle.UnpicklingError, match=key):
        load_checkpoint_file(str(path))


def test_getattr_resolves_a_fixed_list_of_names(tmp_path, monkeypatch):

    class Reaches:

        def __reduce__(self):
            return (getattr, (HistoryBuffer, 'update'))

    torch.save({'x': Reaches()}, tmp_path / 'g.pth')
    # Even where the class dict was widened (by any means), the name stays
    # refused.
    monkeypatch.setitem(HistoryBuffer._statistics_methods, 'update',
                        HistoryBuffer.update)
    with pytest.raises(pickle.UnpicklingError, match="'update'"):
        load_checkpoint_file(str(tmp_path / 'g.pth'))


def test_a_real_buffer_comes_back_and_works(tmp_path):
    buffer = HistoryBuffer()
    for value in (1.5, 2.5):
        buffer.update(value)
    torch.save({'b': buffer}, tmp_path / 'ok.pth')
    loaded = load_checkpoint_file(str(tmp_path / 'ok.pth'))['b']
    assert type(loaded) is HistoryBuffer
    assert loaded.statistics('mean') == 2.0 and loaded.max_length == 1000000
    loaded.update(5.0)
    assert loaded.current() == 5.0
    np.testing.assert_array_equal(loaded.data[0], [1.5, 2.5, 5.0])
    assert HistoryBuffer._statistics_methods == _defaults()


def test_buffers_come_back_at_any_depth(tmp_path):
    buffer = HistoryBuffer([1.0, 3.0], [1, 1], max_length=7)
    torch.save({'hub': {'log_scalars': {'loss': buffer}},
                'seq': [buffer, (1, buffer)]}, tmp_path / 'deep.pth')
    loaded = load_checkpoint_file(str(tmp_path / 'deep.pth'))
    found = [loaded['hub']['log_scalars']['loss'], loaded['seq'][0],
             loaded['seq'][1][1]]
    assert all(type(b) is HistoryBuffer for b in found)
    assert loaded['seq'][1][0] == 1
    for b in found:
        assert b.max_length == 7 and b.statistics('mean') == 2.0


def test_values_and_counts_of_one_length(tmp_path, monkeypatch):
    path = tmp_path / 'lengths.pth'
    _save_with_statistics(path, _defaults(), monkeypatch,
                          _log_history=np.array([1.0, 2.0]),
                          _count_history=np.array([1]))
    with pytest.raises(pickle.UnpicklingError, match='2 values and 1 counts'):
        load_checkpoint_file(str(path))
