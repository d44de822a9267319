"""The only uses of other libraries' private names, one module per library.

``tests/test_compat.py`` pins each on the installed versions.
"""
from .mmengine_private import finish_epoch
from .pickle_private import PurePythonUnpickler, opcode_handlers
from .torch_private import MovesUnregisteredMembers, end_dataloader_workers

__all__ = [
    'end_dataloader_workers', 'finish_epoch', 'MovesUnregisteredMembers',
    'opcode_handlers', 'PurePythonUnpickler'
]
