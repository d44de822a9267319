"""Fingerprints that bind a teacher cache to its images and its arrays.

A cache is only valid for the exact bytes it was recorded from: images
regenerated in place under the same names, or an array copied from another
cache, would otherwise train a student on logits of other views. Each
fingerprint is ``'<bytes>:<BLAKE2b-128 hex>'`` of the whole content;
hashing runs at disk speed (about 1 GB/s a core), once per run, while
training reads every image once per epoch.
"""
import hashlib
import os
import os.path as osp
import stat
from typing import Dict, Iterable, List

__all__ = [
    'array_fingerprints', 'bytes_fingerprint', 'check_regular_file',
    'file_fingerprint', 'sample_fingerprints'
]

_CHUNK = 1 << 20


def bytes_fingerprint(data: bytes) -> str:
    """``'<size>:<hex digest>'`` of bytes in memory (a tar shard's image)."""
    return f'{len(data)}:{hashlib.blake2b(data, digest_size=16).hexdigest()}'


def check_regular_file(path: str) -> None:
    """Refuse a path that is there but is not a regular file.

    Opening a named pipe blocks until something writes to it, and a device
    or socket is no file of recorded bytes, so they are refused before
    they are opened (a symbolic link counts as what it points to).

    Args:
        path (str): The file.

    Raises:
        ValueError: Naming the path and what it is.
    """
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
    """``'<size>:<hex digest>'`` of a file's content, read in chunks.

    Raises:
        ValueError: If ``path`` is not a regular file (never opened).
    """
    check_regular_file(path)
    digest, size = hashlib.blake2b(digest_size=16), 0
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
            size += len(chunk)
    return f'{size}:{digest.hexdigest()}'


def sample_fingerprints(dataset, what: str) -> List[str]:
    """The fingerprint of each sample's image, in sample order.

    Args:
        dataset: A dataset with ``get_data_info``; a sample's image is its
            ``img_bytes`` or the file at ``img_path``.
        what (str): The dataset, for messages.

    Returns:
        list[str]: One fingerprint per sample.

    Raises:
        FileNotFoundError: If a sample has neither bytes nor a file.
    """
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
