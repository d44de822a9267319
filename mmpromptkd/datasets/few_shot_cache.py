"""The few-shot cache files: writing them, and checking a cached draw."""
import collections
import json
from typing import Dict, List, Sequence, Tuple

from mmengine.logging import print_log

from mmpromptkd.fileio import atomic_write


def write_few_shot_cache(path: str, drawn: Dict[str, List[Tuple[str, int]]],
                         class_names: Sequence[str], dataset: str) -> bool:
    """Write a few-shot draw unless the file exists or cannot be made.

    The file is written atomically and never replaces an existing one, so
    concurrent processes never overwrite one another.

    Args:
        path (str): The cache file.
        drawn (dict[str, list[tuple[str, int]]]): Records by split.
        class_names (Sequence[str]): All class names, by label.
        dataset (str): The dataset's name, for messages.

    Returns:
        bool: True if the file already existed (and was left alone).
    """
    payload = {
        split: [[relpath, label, class_names[label]]
                for relpath, label in records]
        for split, records in drawn.items()
    }
    try:
        atomic_write(json.dumps(payload), path, exclusive=True)
    except FileExistsError:
        return True
    except OSError as e:
        print_log(
            f'{dataset}: not caching the few-shot split, could not write '
            f'{path} ({e})',
            logger='current')
    return False


def check_few_shot_draw(drawn: List[Tuple[str, int]], *,
                        split_records: List[Tuple[str, int]], shots: int,
                        class_names: Sequence[str],
                        source: str) -> List[Tuple[str, int]]:
    """Check that a cached few-shot draw is a draw of its split.

    Args:
        drawn (list[tuple[str, int]]): The cached ``(path, label)`` records.
        split_records (list[tuple[str, int]]): The split's records.
        shots (int): Images per class of the draw.
        class_names (Sequence[str]): All class names, by label.
        source (str): The cache file and split, for messages.

    Returns:
        list[tuple[str, int]]: ``drawn``.

    Raises:
        ValueError: If an image is not the split's, has another label or
            is listed twice, or a class keeps other than ``min(shots, its
            images)`` images.
    """
    labels = dict(split_records)
    seen = set()
    again = 'the cache belongs to other data; delete it to draw again'
    for i, (relpath, label) in enumerate(drawn):
        if relpath not in labels:
            raise ValueError(f'{source}: item {i} ({relpath}) is not an '
                             f'image of the split; {again}')
        if labels[relpath] != label:
            raise ValueError(f'{source}: item {i} ({relpath}) has label '
                             f'{label}, the split {labels[relpath]}; {again}')
        if relpath in seen:
            raise ValueError(f'{source}: item {i} ({relpath}) is listed '
                             f'twice; {again}')
        seen.add(relpath)
    counts = collections.Counter(label for _, label in drawn)
    available = collections.Counter(label for _, label in split_records)
    for label in sorted(available):
        expected = min(shots, available[label])
        if counts[label] != expected:
            raise ValueError(
                f'{source}: class {label} ({class_names[label]!r}) has '
                f'{counts[label]} images, a draw of {shots} shots has '
                f'{expected}; {again}')
    return drawn
