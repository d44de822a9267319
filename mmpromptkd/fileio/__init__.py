"""File writing of mmpromptkd, through mmengine's backend registry."""
from .atomic_local_backend import AtomicLocalBackend
from .atomic_write import TEMPORARY_NAME, atomic_write

__all__ = ['AtomicLocalBackend', 'TEMPORARY_NAME', 'atomic_write']
