"""A local file backend whose writes replace files in one step."""
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from .atomic_write import atomic_write

__all__ = ['AtomicLocalBackend']


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """mmengine's :class:`LocalBackend` with atomic ``put`` and ``put_text``.

    mmengine writes checkpoints straight into the final file, so a crash
    mid-write leaves a truncated one. Selected by ``backend_args=dict(
    backend='atomic_local')``; mmengine's ``LocalBackend`` is not changed.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write bytes to a file, atomically.

        Args:
            obj (bytes): Data to write.
            filepath (str | Path): Target path.
        """
        atomic_write(obj, str(filepath))

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Write text to a file, atomically.

        Args:
            obj (str): Text to write.
            filepath (str | Path): Target path.
            encoding (str): Encoding. Defaults to 'utf-8'.
        """
        atomic_write(obj, str(filepath), encoding=encoding)
