"""File writing of mmpromptkd, through mmengine's backend registry."""
from .atomic_local_backend import AtomicLocalBackend
from .atomic_write import atomic_write

__all__ = ['AtomicLocalBackend', 'atomic_write']
