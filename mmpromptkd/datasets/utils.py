"""Helpers shared by the CoOp-format datasets.

These functions hold the parts of the data protocol that several datasets
share: deterministic folder listing, ImageNet class-name files and the
few-shot sampling rule.
"""
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


def list_files(folder: str) -> List[str]:
    """List the non-hidden regular files of a folder, sorted by name.

    Sorting makes the listing independent of the file system's order.
    ``os.scandir`` reads the entry type from the directory itself, so no
    image is stat-ed on common file systems.

    Args:
        folder (str): The folder to list.

    Returns:
        list[str]: File names (not paths), sorted.
    """
    with os.scandir(folder) as entries:
        names = [
            e.name for e in entries
            if not e.name.startswith('.') and e.is_file()
        ]
    return sorted(names)


def list_dirs(folder: str) -> List[str]:
    """List the non-hidden sub-folders of a folder, sorted by name.

    Args:
        folder (str): The folder to list.

    Returns:
        list[str]: Sub-folder names (not paths), sorted.
    """
    with os.scandir(folder) as entries:
        names = [
            e.name for e in entries
            if not e.name.startswith('.') and e.is_dir()
        ]
    return sorted(names)


def read_imagenet_classnames(path: str) -> Tuple[List[str], List[str]]:
    """Read an ImageNet ``classnames.txt``.

    Each non-empty line is ``<wnid> <class name>``; the name may contain
    spaces. The line order defines the labels.

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

    The rule, which does not depend on the order of ``records``:

    1. group the records by label and sort each group by path;
    2. for each label ``c``, draw ``num_shots`` of them with
       ``random.Random(f'{salt}{seed}-{c}').sample``, a generator of its own
       per class, so one class's draw does not depend on the others;
    3. a class with at most ``num_shots`` records keeps all of them.

    The result is sorted by label, then path.

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

    Dassl seeds Python's global generator with the run's seed and, for each
    split in turn (train, then val), groups the records by label in order
    of first appearance and takes ``random.sample(items, k)`` per label (all
    items when a label has fewer than ``k``). One generator serves every
    split and label, so the draw depends on the records' order, which is
    the split file's. The drawn records keep the order of the draw.

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
    """Join path parts, dropping empty ones.

    ``osp.join('a', '')`` ends in a separator, which reads badly in error
    messages and makes two spellings of one path.

    Args:
        *parts (str): Path parts; empty ones are skipped.

    Returns:
        str: The joined path, or '' when every part is empty.
    """
    kept = [p for p in parts if p]
    return osp.join(*kept) if kept else ''
