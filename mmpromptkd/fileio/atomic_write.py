"""Writes that readers never see half done."""
import os
import re
from pathlib import Path
from typing import List, Optional, Union

from mmengine.fileio import LocalBackend, register_backend

#: Name of the package's temporaries, ``.mmpromptkd-NAME.PID.tmp``; group 1
#: is the writing process (so leftovers of killed runs are known).
TEMPORARY_NAME = re.compile(r'^\.mmpromptkd-.+\.(\d{1,7})\.tmp$')


def temporary_path(path: str, pid: Optional[int] = None) -> str:
    """Where a write of ``path`` by process ``pid`` (this one by default)
    goes first: ``.mmpromptkd-NAME.PID.tmp`` in the folder of ``path``."""
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    pid = os.getpid() if pid is None else pid
    return os.path.join(folder, f'.mmpromptkd-{name}.{pid}.tmp')


def dead_temporaries(folder: str, of: Optional[str] = None) -> List[str]:
    """The package's temporaries in ``folder`` whose writer is gone, as
    sorted paths (files or folders; symbolic links never count).

    Args:
        folder (str): The folder to look in.
        of (str, optional): Only the temporaries of this final name.
    """
    prefix = '.mmpromptkd-' if of is None else f'.mmpromptkd-{of}.'
    found = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
        match = TEMPORARY_NAME.match(name)
        path = os.path.join(folder, name)
        if match and name.startswith(prefix) and not os.path.islink(path) \
                and not _process_alive(int(match.group(1))):
            found.append(path)
    return found


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def atomic_write(data: Union[bytes, str], filepath: str,
                 encoding: str = 'utf-8', exclusive: bool = False) -> None:
    """Write ``data`` to ``filepath`` so that readers never see half a file:
    via :func:`temporary_path`, flushed to disk and renamed into place.

    Args:
        data (bytes | str): Content; text is encoded with ``encoding``.
        filepath (str): Target path; its folder is created if missing.
        encoding (str): Encoding of text content.
        exclusive (bool): Never replace an existing ``filepath`` (raise
            FileExistsError), even against concurrent writers (a hard link).
    """
    if isinstance(data, str):
        data = data.encode(encoding)
    filepath = os.fspath(filepath)
    os.makedirs(os.path.dirname(os.path.abspath(filepath)), exist_ok=True)
    tmp = temporary_path(filepath)
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if not exclusive:
            os.replace(tmp, filepath)
            return
        try:
            os.link(tmp, filepath)
        except FileExistsError:
            raise
        except OSError:  # no hard links on this file system
            if os.path.exists(filepath):
                raise FileExistsError(filepath) from None
            os.replace(tmp, filepath)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """mmengine's :class:`LocalBackend` with atomic ``put`` and ``put_text``
    (``backend_args=dict(backend='atomic_local')``): a crash mid-write
    leaves no truncated checkpoint."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write(obj, str(filepath))

    def put_text(self, obj: str, filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        atomic_write(obj, str(filepath), encoding=encoding)
