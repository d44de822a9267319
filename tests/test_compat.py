"""Pins the private names of other libraries that ``mmpromptkd.compat`` uses.

Each test checks, on the installed version, the behaviour the package
relies on; an upgrade that changes it fails here.
"""
import multiprocessing
from types import SimpleNamespace

import torch
from torch.utils.data import DataLoader

from mmpromptkd.compat import end_dataloader_workers


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
