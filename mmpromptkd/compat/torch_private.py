"""Private names of torch that the package uses, and why.

``DataLoader._iterator``: torch has no public way to end a dataloader's
persistent workers. Its iterator ends them when it is deleted, but only
while its queues still work: left to the garbage collector with the rest
of a finished runner, the queues are closed first (their finalisers are
weak-reference callbacks, which the collector calls before ``__del__``),
the workers never receive their stop message, and each costs torch's 5 s
join timeout. Dropping the loader's reference at the end of a run deletes
the iterator at once, with working queues.

``Module._apply``: the one method that every ``.to()``, ``.cuda()``,
``.half()`` and ``.float()`` goes through. A module that holds a member
outside its module tree (the distiller's frozen teacher, which must stay
out of checkpoints, optimizers and DDP) overrides it so the member moves
with the module.
"""
from typing import Any, Callable, Iterable

from torch import Tensor, nn
from torch.utils.data import DataLoader

__all__ = ['end_dataloader_workers', 'MovesUnregisteredMembers']


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


class MovesUnregisteredMembers(nn.Module):
    """A mixin: members outside the module tree follow device and dtype
    changes (``.to()``, ``.cuda()``, ``.half()``, ...) of the module."""

    def unregistered_modules(self) -> Iterable[nn.Module]:
        """Modules held outside the module tree; none by default."""
        return ()

    def apply_to_unregistered_tensors(self,
                                      fn: Callable[[Tensor], Tensor]) -> None:
        """Apply ``fn`` to tensors held outside the module's buffers (the
        default holds none)."""

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        for member in self.unregistered_modules():
            member._apply(fn, *args, **kwargs)
        self.apply_to_unregistered_tensors(fn)
        return self
