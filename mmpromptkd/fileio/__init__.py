"""File writing of mmpromptkd, through mmengine's backend registry."""
from .atomic_local_backend import AtomicLocalBackend
from .atomic_write import (TEMPORARY_NAME, atomic_write, process_alive,
                           temporary_path)

__all__ = [
    'AtomicLocalBackend', 'TEMPORARY_NAME', 'atomic_write', 'process_alive',
    'temporary_path'
]
