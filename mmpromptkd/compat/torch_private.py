"""Private names of torch that the package uses, and why.

``DataLoader._iterator``: no public way ends persistent workers; left to the
garbage collector, their queues close first and each costs a 5 s timeout.

``Module._apply``: the one method every ``.to()``/``.half()`` goes through,
so a member outside the module tree (the frozen teacher) can follow it.
"""
from typing import Any, Callable, Iterable

from torch import Tensor, nn
from torch.utils.data import DataLoader


def end_dataloader_workers(*loops: Any) -> None:
    """End the worker processes of the (done) loops' dataloaders now."""
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
