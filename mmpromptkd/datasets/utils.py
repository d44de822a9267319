"""Helpers shared by the datasets."""
import os
import os.path as osp
import random
from collections import defaultdict
from typing import Callable, Dict, Iterator, List, Sequence, Tuple, Union

from mmpromptkd.registry import TRANSFORMS

# An image: its path relative to the image folder and its label.
Record = Tuple[str, int]
DOCS_HINT = 'see docs/datasets.md'


def is_int(value) -> bool:
    """Whether ``value`` is an int (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def build_pipeline(pipeline: Sequence[Union[dict, Callable]]) -> list:
    """The transforms, dicts built from the ``mmpromptkd`` registry."""
    return [
        TRANSFORMS.build(step) if isinstance(step, dict) else step
        for step in pipeline
    ]


def shorten(items: Sequence[str], limit: int = 5) -> str:
    """The first ``limit`` items, joined, then ' ...' if there are more."""
    return ', '.join(items[:limit]) + (' ...' if len(items) > limit else '')


def list_folder(folder: str, dirs: bool = False) -> List[str]:
    """The sorted names of a folder's non-hidden files (or sub-folders)."""
    # os.scandir reads the entry type from the directory itself, so no
    # image is stat-ed on common file systems.
    with os.scandir(folder) as entries:
        return sorted(
            e.name for e in entries
            if not e.name.startswith('.') and (e.is_dir() if dirs else
                                               e.is_file()))


def read_pairs(path: str, layout: str) -> Iterator[Tuple[int, str, str]]:
    """``(line number, first word, rest)`` of each non-blank line of a text
    file whose lines are ``layout``."""
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            key, _, rest = line.partition(' ')
            if not rest.strip():
                raise ValueError(f'{path}, line {lineno}: expected '
                                 f'"{layout}", got {line!r} ({DOCS_HINT})')
            yield lineno, key, rest.strip()


def read_imagenet_classnames(path: str) -> Tuple[List[str], List[str]]:
    """The wnids and class names of ``<wnid> <class name>`` lines."""
    wnids, names = [], []
    for lineno, wnid, name in read_pairs(path, '<wnid> <class name>'):
        if wnid in wnids:
            raise ValueError(
                f'{path}, line {lineno}: wnid {wnid!r} appears twice')
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
    """Draw ``num_shots`` records per class (``docs/datasets.md``).

    Returns the records, sorted by label then path, and the count of each
    class with fewer than ``num_shots`` records (kept whole).
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
        if len(paths) < num_shots:
            short[label] = len(paths)
        if len(paths) > num_shots:
            rng = random.Random(f'{salt}{seed}-{label}')
            paths = sorted(rng.sample(paths, num_shots))
        sampled.extend((p, label) for p in paths)
    return sampled, short


def sample_few_shot_dassl(
        splits: Sequence[Tuple[Sequence[Record], int]],
        seed: int) -> Tuple[List[List[Record]], List[Dict[int, int]]]:
    """Draw the ``(records, shots)`` splits exactly as Dassl does.

    Returns each split's draw and its labels with fewer records, with
    their counts.
    """
    # random.Random(seed) yields random.seed(seed)'s stream without touching
    # the global generator; the draw depends on the records' order, as
    # Dassl's does.
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
    """``osp.join`` of the non-empty parts ('' if none): no trailing
    separator, so one path has one spelling."""
    kept = [p for p in parts if p]
    return osp.join(*kept) if kept else ''
