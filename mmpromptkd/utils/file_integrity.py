"""Check files against a ``SHA256SUMS`` list (``sha256sum`` format)."""
import hashlib
import os
import os.path as osp
import re
from typing import Dict, Union

__all__ = ['ChecksumError', 'sha256_of_file', 'read_sha256sums',
           'verify_sha256']

# "<64 hex>  <name>" (text mode) or "<64 hex> *<name>" (binary mode).
_LINE = re.compile(r'^([0-9a-fA-F]{64}) [ *](.+)$')

PathLike = Union[str, os.PathLike]


class ChecksumError(ValueError):
    """A file does not match its recorded SHA-256, or has no record."""


def sha256_of_file(path: PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 digest of a file, read in chunks.

    Args:
        path (str | os.PathLike): The file.
        chunk_size (int): Bytes read at a time. Defaults to 1 MiB.

    Returns:
        str: 64 lowercase hex digits.
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()


def read_sha256sums(sums_file: PathLike) -> Dict[str, str]:
    """Parse a ``sha256sum``-format file.

    Args:
        sums_file (str | os.PathLike): The sums file; blank lines and lines
            starting with ``#`` are skipped.

    Returns:
        dict[str, str]: Lowercase digest by file name, as written in the
        file (relative to the sums file's directory).

    Raises:
        ChecksumError: If a line is malformed or a name appears twice.
    """
    sums = {}
    with open(sums_file, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip('\r\n')
            if not line.strip() or line.startswith('#'):
                continue
            match = _LINE.match(line)
            if match is None:
                raise ChecksumError(
                    f'{sums_file}, line {number}: not "<sha256>  <name>": '
                    f'{line!r}')
            digest, name = match.group(1).lower(), match.group(2)
            if name in sums:
                raise ChecksumError(
                    f'{sums_file}, line {number}: {name} is listed twice')
            sums[name] = digest
    return sums


def verify_sha256(path: PathLike, sums_file: PathLike) -> str:
    """Check that a file matches its entry in a ``SHA256SUMS`` file.

    The entry is looked up by the file's path relative to the directory of
    ``sums_file`` (for a file next to it, its base name), as ``sha256sum -c``
    run in that directory would.

    Args:
        path (str | os.PathLike): The file to check.
        sums_file (str | os.PathLike): The ``sha256sum``-format list.

    Returns:
        str: The verified digest.

    Raises:
        FileNotFoundError: If ``path`` or ``sums_file`` does not exist.
        ChecksumError: If the file has no entry or its digest differs; the
            message names the file and both digests.
    """
    path, sums_file = os.fspath(path), os.fspath(sums_file)
    for name, what in ((path, 'file'), (sums_file, 'checksum list')):
        if not osp.isfile(name):
            raise FileNotFoundError(f'{what} not found: {name}')
    sums = read_sha256sums(sums_file)
    rel = osp.relpath(osp.abspath(path),
                      osp.dirname(osp.abspath(sums_file)))
    key = rel.replace(os.sep, '/')
    candidates = (key, './' + key)
    expected = next((sums[k] for k in candidates if k in sums), None)
    if expected is None:
        raise ChecksumError(f'{path}: no entry "{key}" in {sums_file}')
    actual = sha256_of_file(path)
    if actual != expected:
        raise ChecksumError(
            f'{path}: SHA-256 mismatch, expected {expected} (from '
            f'{sums_file}), got {actual}. The file is corrupt, truncated '
            '(e.g. a Git LFS pointer) or was replaced without updating the '
            'checksum list.')
    return actual
