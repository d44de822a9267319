"""Fingerprints (``'<bytes>:<BLAKE2b-128 hex>'``) that bind a teacher cache
to the exact bytes of its images and arrays (``docs/teacher_cache.md``)."""
import hashlib
import os
import os.path as osp
import stat
from typing import Dict, Iterable, List

_CHUNK = 1 << 20


def bytes_fingerprint(data: bytes) -> str:
    """``'<size>:<hex digest>'`` of bytes in memory (a tar shard's image)."""
    return f'{len(data)}:{hashlib.blake2b(data, digest_size=16).hexdigest()}'


def check_regular_file(path: str) -> None:
    """ValueError for an existing path that is no regular file (a named
    pipe would block its reader; links count as their target)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return  # the caller's own error names a missing file
    if stat.S_ISREG(mode):
        return
    kind = ('a named pipe' if stat.S_ISFIFO(mode) else
            'a folder' if stat.S_ISDIR(mode) else
            'a socket' if stat.S_ISSOCK(mode) else 'a device')
    raise ValueError(f'{path}: not a regular file ({kind}); it is never '
                     'opened')


def file_fingerprint(path: str) -> str:
    """``'<size>:<hex digest>'`` of a regular file's content."""
    check_regular_file(path)
    digest, size = hashlib.blake2b(digest_size=16), 0
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
            size += len(chunk)
    return f'{size}:{digest.hexdigest()}'


def sample_fingerprints(dataset, what: str) -> List[str]:
    """The fingerprint of each sample's ``img_bytes`` or ``img_path`` file
    (``what`` names the dataset in errors)."""
    found = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        if isinstance(info.get('img_bytes'), bytes):
            found.append(bytes_fingerprint(info['img_bytes']))
        elif isinstance(info.get('img_path'), str) and \
                osp.isfile(info['img_path']):
            found.append(file_fingerprint(info['img_path']))
        else:
            raise FileNotFoundError(
                f'{what}: sample {i} has no image file to fingerprint '
                f'(img_path={info.get("img_path")!r})')
    return found


def array_fingerprints(folder: str, names: Iterable[str]) -> Dict[str, str]:
    """The fingerprint of each ``<folder>/<name>.npy``, by name."""
    return {
        name: file_fingerprint(osp.join(folder, f'{name}.npy'))
        for name in names
    }
