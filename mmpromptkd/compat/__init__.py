"""The only uses of other libraries' private names, one module per library.

Each use is here because the library offers no public way to do the same;
each module says why, and ``tests/test_compat.py`` pins the behaviour on
the installed versions, so that an upgrade that changes it fails a test
instead of changing a result.
"""
from .mmengine_private import finish_epoch
from .pickle_private import PurePythonUnpickler, opcode_handlers
from .torch_private import MovesUnregisteredMembers, end_dataloader_workers

__all__ = [
    'end_dataloader_workers', 'finish_epoch', 'MovesUnregisteredMembers',
    'opcode_handlers', 'PurePythonUnpickler'
]
