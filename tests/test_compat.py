"""Pins the private names of other libraries that ``mmpromptkd.compat`` uses.

Each test checks, on the installed version, the behaviour the package
relies on; an upgrade that changes it fails here.
"""
import inspect
import multiprocessing
from types import SimpleNamespace

import pytest
import torch
from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import DataLoader

from mmpromptkd.compat import (MovesUnregisteredMembers,
                               end_dataloader_workers, finish_epoch)


def test_dataloader_iterator_holds_persistent_workers():
    """``DataLoader._iterator`` is the persistent iterator; dropping it
    ends the workers at once."""
    before = {p.pid for p in multiprocessing.active_children()}
    loader = DataLoader(torch.arange(8.), batch_size=2, num_workers=2,
                        persistent_workers=True)
    assert [b.tolist() for b in loader][0] == [0., 1.]
    assert loader._iterator is not None
    started = {p.pid for p in multiprocessing.active_children()} - before
    assert len(started) == 2
    end_dataloader_workers(SimpleNamespace(dataloader=loader), None)
    assert loader._iterator is None
    alive = {p.pid for p in multiprocessing.active_children()}
    assert not started & alive
    # The loader still works: a new epoch starts new workers.
    assert len(list(loader)) == 4
    end_dataloader_workers(SimpleNamespace(dataloader=loader))


class _Holder(MovesUnregisteredMembers):
    """A module with a submodule and a tensor outside its module tree."""

    def __init__(self):
        super().__init__()
        self.own = torch.nn.Linear(2, 2)
        object.__setattr__(self, 'hidden', torch.nn.Linear(2, 2))
        self.loose = torch.zeros(3)

    def unregistered_modules(self):
        return [self.hidden]

    def apply_to_unregistered_tensors(self, fn):
        self.loose = fn(self.loose)


def test_module_apply_reaches_every_device_and_dtype_change():
    """``Module._apply`` is what .half(), .to(dtype), .double() and
    .float() go through: unregistered members follow each of them."""
    holder = _Holder()
    assert 'hidden' not in dict(holder.named_modules())
    for change, dtype in ((lambda m: m.half(), torch.float16),
                          (lambda m: m.to(torch.float64), torch.float64),
                          (lambda m: m.float(), torch.float32),
                          (lambda m: m.to('cpu', torch.bfloat16),
                           torch.bfloat16)):
        assert change(holder) is holder
        assert holder.own.weight.dtype == dtype
        assert holder.hidden.weight.dtype == dtype
        assert holder.loose.dtype == dtype


def test_epoch_counter_behind_the_epoch_property():
    """``finish_epoch`` advances what ``EpochBasedTrainLoop.epoch``
    reads, as mmengine's own ``run_epoch`` does."""
    loop = EpochBasedTrainLoop.__new__(EpochBasedTrainLoop)
    loop._epoch = 3
    assert loop.epoch == 3
    finish_epoch(loop)
    assert loop.epoch == 4
    source = inspect.getsource(EpochBasedTrainLoop.run_epoch)
    assert 'self._epoch += 1' in source


def test_pure_python_unpickler_runs_only_its_opcode_table():
    """A subclass of ``pickle._Unpickler`` whose ``dispatch`` lacks an
    opcode cannot run it; with the table's plain opcodes it reads data."""
    import io
    import pickle

    from mmpromptkd.compat import PurePythonUnpickler, opcode_handlers

    class Plain(PurePythonUnpickler):
        dispatch = opcode_handlers(
            ['PROTO', 'STOP', 'MARK', 'EMPTY_LIST', 'BININT1', 'APPENDS',
             'MEMOIZE', 'FRAME'])

    data = pickle.dumps([1, 2, 3], protocol=4)
    assert Plain(io.BytesIO(data)).load() == [1, 2, 3]
    with pytest.raises(KeyError):  # REDUCE is not in the table
        Plain(io.BytesIO(pickle.dumps(range(3), protocol=4))).load()
