"""Writes that readers never see half done."""
import os
import re
from typing import Union

__all__ = ['TEMPORARY_NAME', 'atomic_write']

#: Name of the temporary file of a write, ``.NAME.PID.tmp``; group 1 is the
#: id of the writing process (so that leftovers of killed runs are known).
TEMPORARY_NAME = re.compile(r'^\..+\.(\d+)\.tmp$')


def atomic_write(data: Union[bytes, str],
                 filepath: str,
                 encoding: str = 'utf-8',
                 exclusive: bool = False) -> None:
    """Write ``data`` to ``filepath`` so that readers never see half a file.

    The bytes go to a temporary file ``.NAME.PID.tmp`` in the same folder,
    are flushed to disk, and then replace ``filepath`` in one rename; on
    failure the temporary file is removed and any earlier ``filepath`` is
    untouched.

    Args:
        data (bytes | str): Content; text is encoded with ``encoding``.
        filepath (str): Target path; its folder is created if missing.
        encoding (str): Encoding of text content. Defaults to 'utf-8'.
        exclusive (bool): Never replace an existing ``filepath``: the
            complete file is hard-linked into place, which fails if the
            target exists, so that concurrent writers never overwrite one
            another (on file systems without hard links, an existing file
            is checked for just before the rename). Defaults to False.

    Raises:
        FileExistsError: With ``exclusive``, if ``filepath`` exists.
    """
    if isinstance(data, str):
        data = data.encode(encoding)
    filepath = os.fspath(filepath)
    folder = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder,
                       f'.{os.path.basename(filepath)}.{os.getpid()}.tmp')
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
