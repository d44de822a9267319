"""Generated images, folders and shards for the unlabeled-data tests."""
import io
import os.path as osp
import tarfile
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
from PIL import Image


def png_bytes(seed: int, size: int = 8) -> bytes:
    """A small random RGB PNG."""
    pixels = np.random.default_rng(seed).integers(
        0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format='PNG')
    return buffer.getvalue()


def write_images(root: Path, relpaths: Sequence[str]) -> List[str]:
    """Write a PNG at each relative path; return the absolute paths."""
    paths = []
    for i, rel in enumerate(relpaths):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(i))
        paths.append(str(path))
    return paths


def write_shard(path: Path, samples: Dict[str, Dict[str, bytes]]) -> None:
    """Write a tar shard: ``{key: {ext: bytes}}`` as ``key.ext`` members."""
    with tarfile.open(path, 'w') as tar:
        for key, members in samples.items():
            for ext, data in members.items():
                info = tarfile.TarInfo(f'{key}.{ext}')
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def write_shards(folder: Path, sizes: Sequence[int]) -> List[str]:
    """Shards of the given sizes with distinct PNG samples ``s<i>_<j>``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, n in enumerate(sizes):
        path = folder / f'shard-{i:03d}.tar'
        write_shard(
            path,
            {f's{i}_{j}': {
                'png': png_bytes(1000 * i + j)
            }
             for j in range(n)})
        paths.append(str(path))
    return paths


def key_of(img_path: str) -> str:
    """The sample key of ``'<shard>#<key>'``."""
    return img_path.rsplit('#', 1)[1]


def shard_pattern(folder: Path, count: int) -> str:
    """The brace pattern of ``write_shards``' files."""
    return osp.join(str(folder), f'shard-{{000..{count - 1:03d}}}.tar')
