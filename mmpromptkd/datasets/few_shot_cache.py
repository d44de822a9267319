"""Writing the few-shot cache files (``split_fewshot/shot_K-seed_S.json``)."""
import json
from typing import Dict, List, Sequence, Tuple

from mmengine.logging import print_log

from mmpromptkd.fileio import atomic_write


def write_few_shot_cache(path: str, drawn: Dict[str, List[Tuple[str, int]]],
                         class_names: Sequence[str], dataset: str) -> bool:
    """Write a few-shot draw unless the file exists or cannot be made.

    The file is written atomically and never replaces an existing one
    (:func:`~mmpromptkd.fileio.atomic_write` with ``exclusive``), so
    concurrent processes never overwrite one another. Each record is kept
    as ``[relative path, label, class name]``.

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
