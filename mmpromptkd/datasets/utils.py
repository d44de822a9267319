"""Helpers shared by the CoOp-format datasets."""
import os
import os.path as osp
import random
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

# A record is one image: its path relative to the image folder and its label.
Record = Tuple[str, int]

__all__ = [
    'Record', 'join_nonempty', 'list_files', 'list_dirs',
    'read_imagenet_classnames', 'sample_few_shot', 'sample_few_shot_dassl'
]


def _list_entries(folder: str, dirs: bool) -> List[str]:
    """The sorted names of a folder's non-hidden files or sub-folders."""
    # os.scandir reads the entry type from the directory itself, so no
    # image is stat-ed on common file systems.
    with os.scandir(folder) as entries:
        return sorted(
            e.name for e in entries
            if not e.name.startswith('.') and (e.is_dir() if dirs else
                                               e.is_file()))


def list_files(folder: str) -> List[str]:
    """List the non-hidden regular files of a folder, sorted by name, so
    that the listing does not depend on the file system's order.

    Args:
        folder (str): The folder to list.

    Returns:
        list[str]: File names (not paths), sorted.
    """
    return _list_entries(folder, dirs=False)


def list_dirs(folder: str) -> List[str]:
    """List the non-hidden sub-folders of a folder, sorted by name.

    Args:
        folder (str): The folder to list.

    Returns:
        list[str]: Sub-folder names (not paths), sorted.
    """
    return _list_entries(folder, dirs=True)


def read_imagenet_classnames(path: str) -> Tuple[List[str], List[str]]:
    """Read an ImageNet ``classnames.txt`` (``<wnid> <class name>`` lines).

    Args:
        path (str): Path of ``classnames.txt``.

    Returns:
        tuple[list[str], list[str]]: The WordNet ids and the class names,
        in file order.

    Raises:
        ValueError: If a line has no name or a wnid appears twice.
    """
    wnids, names = [], []
    seen = set()
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            wnid, _, name = line.partition(' ')
            name = name.strip()
            if not name:
                raise ValueError(
                    f'{path}, line {lineno}: expected "<wnid> <class name>", '
                    f'got {line!r}')
            if wnid in seen:
                raise ValueError(
                    f'{path}, line {lineno}: wnid {wnid!r} appears twice')
            seen.add(wnid)
            wnids.append(wnid)
            names.append(name)
    if not wnids:
        raise ValueError(f'{path} lists no class; expected one '
                         '"<wnid> <class name>" line per class')
    return wnids, names


def sample_few_shot(records: Sequence[Record],
                    num_shots: int,
                    seed: int,
                    salt: str = '') -> Tuple[List[Record], Dict[int, int]]:
    """Draw ``num_shots`` records per class, deterministically.

    Each class's paths are sorted and sampled with a generator of its own,
    ``random.Random(f'{salt}{seed}-{label}')``, so the draw depends neither
    on the order of ``records`` nor on the other classes; a class with at
    most ``num_shots`` records keeps all. The result is sorted by label,
    then path (``docs/datasets.md``).

    Args:
        records (Sequence[tuple[str, int]]): ``(relpath, label)`` pairs.
        num_shots (int): Images per class, at least 1.
        seed (int): The random seed.
        salt (str): Mixed into each class's seed so that two splits drawn
            with the same seed use different streams. Defaults to ''.

    Returns:
        tuple[list[tuple[str, int]], dict[int, int]]: The sampled records and,
        for each class with fewer than ``num_shots`` records, its count.
    """
    if num_shots < 1:
        raise ValueError(f'num_shots must be >= 1, got {num_shots}')
    by_label: Dict[int, List[str]] = defaultdict(list)
    for relpath, label in records:
        by_label[label].append(relpath)

    sampled: List[Record] = []
    short: Dict[int, int] = {}
    for label in sorted(by_label):
        paths = sorted(by_label[label])
        if len(paths) <= num_shots:
            if len(paths) < num_shots:
                short[label] = len(paths)
            chosen = paths
        else:
            rng = random.Random(f'{salt}{seed}-{label}')
            chosen = sorted(rng.sample(paths, num_shots))
        sampled.extend((p, label) for p in chosen)
    return sampled, short


def sample_few_shot_dassl(
        splits: Sequence[Tuple[Sequence[Record], int]],
        seed: int) -> Tuple[List[List[Record]], List[Dict[int, int]]]:
    """Draw few-shot splits exactly as Dassl does for a seed.

    Dassl seeds one generator with the run's seed and, split after split,
    takes ``random.sample(items, k)`` per label in order of first appearance
    (all items when fewer), so the draw depends on the records' order (the
    split file's). The drawn records keep the order of the draw.

    Args:
        splits (Sequence[tuple[Sequence[tuple[str, int]], int]]): The
            ``(records, shots)`` of each split, in Dassl's order.
        seed (int): The run's seed (Dassl's ``cfg.SEED``).

    Returns:
        tuple[list[list[tuple[str, int]]], list[dict[int, int]]]: The drawn
        records of each split and, per split, the labels with fewer than
        ``shots`` records and their counts.
    """
    # random.Random(seed) yields the stream of random.seed(seed) without
    # touching the global generator.
    rng = random.Random(seed)
    drawn, shorts = [], []
    for records, num_shots in splits:
        if num_shots < 1:
            raise ValueError(f'num_shots must be >= 1, got {num_shots}')
        by_label: Dict[int, List[Record]] = {}
        for record in records:
            by_label.setdefault(record[1], []).append(record)
        out: List[Record] = []
        short: Dict[int, int] = {}
        for label, items in by_label.items():
            if len(items) >= num_shots:
                out.extend(rng.sample(items, num_shots))
            else:
                short[label] = len(items)
                out.extend(items)
        drawn.append(out)
        shorts.append(short)
    return drawn, shorts


def join_nonempty(*parts: str) -> str:
    """Join path parts, dropping empty ones: ``osp.join('a', '')`` ends in
    a separator, which reads badly in messages and makes two spellings of
    one path.

    Args:
        *parts (str): Path parts; empty ones are skipped.

    Returns:
        str: The joined path, or '' when every part is empty.
    """
    kept = [p for p in parts if p]
    return osp.join(*kept) if kept else ''
