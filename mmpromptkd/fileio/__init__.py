"""File writing of mmpromptkd, through mmengine's backend registry."""
from .atomic_write import (TEMPORARY_NAME, AtomicLocalBackend, atomic_write,
                           dead_temporaries, temporary_path)

__all__ = ['AtomicLocalBackend', 'TEMPORARY_NAME', 'atomic_write',
           'dead_temporaries', 'temporary_path']
