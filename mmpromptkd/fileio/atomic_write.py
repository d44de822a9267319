"""Writes that readers never see half done."""
import os
from typing import Union

__all__ = ['atomic_write']


def atomic_write(data: Union[bytes, str],
                 filepath: str,
                 encoding: str = 'utf-8') -> None:
    """Write ``data`` to ``filepath`` so that readers never see half a file.

    The bytes go to a temporary file ``.NAME.PID.tmp`` in the same folder,
    are flushed to disk, and then replace ``filepath`` in one rename; on
    failure the temporary file is removed and any earlier ``filepath`` is
    untouched.

    Args:
        data (bytes | str): Content; text is encoded with ``encoding``.
        filepath (str): Target path; its folder is created if missing.
        encoding (str): Encoding of text content. Defaults to 'utf-8'.
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
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
