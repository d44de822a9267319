"""Private names of torch that the package uses (see the package docs).

``DataLoader._iterator``: torch has no public way to end a dataloader's
persistent workers. Its iterator ends them when it is deleted, but only
while its queues still work: left to the garbage collector with the rest
of a finished runner, the queues are closed first (their finalisers are
weak-reference callbacks, which the collector calls before ``__del__``),
the workers never receive their stop message, and each costs torch's 5 s
join timeout. Dropping the loader's reference at the end of a run deletes
the iterator at once, with working queues.
"""
from typing import Any

from torch.utils.data import DataLoader

__all__ = ['end_dataloader_workers']


def end_dataloader_workers(*loops: Any) -> None:
    """End the worker processes of the loops' dataloaders now.

    Call it when the loops are done: a later epoch would start new workers.

    Args:
        *loops: mmengine loops (or ``None``); each one's ``dataloader`` and,
            for an iteration-based loop, its ``dataloader_iterator`` are
            released.
    """
    for loop in loops:
        if getattr(loop, 'dataloader_iterator', None) is not None:
            loop.dataloader_iterator = None  # holds the loader's iterator
        loader = getattr(loop, 'dataloader', None)
        if isinstance(loader, DataLoader):
            loader._iterator = None
