"""The synthetic-shapes domain: its classes, attributes and constants."""
import functools
import itertools
import math
from typing import Dict, List, Tuple

import numpy as np

# Saturated colours only: backgrounds are low-saturation, so a shape's colour
# never blends into the background and stays the discriminative cue.
COLOUR_RGB: Dict[str, Tuple[int, int, int]] = {
    'red': (215, 35, 35),
    'green': (35, 165, 55),
    'blue': (35, 75, 215),
    'yellow': (235, 210, 30),
    'purple': (135, 45, 180),
    'orange': (245, 130, 20),
    'pink': (245, 120, 185),
    'brown': (130, 80, 30),
}
COLOURS: Tuple[str, ...] = tuple(COLOUR_RGB)
PATTERNS: Tuple[str, ...] = ('plain', 'striped', 'dotted', 'checkered')
# No diamond/rhombus: under free rotation it would be a square.
SHAPES: Tuple[str, ...] = ('circle', 'square', 'triangle', 'star', 'cross',
                           'heart')

# Every template holds the full class name, so a caption maps back to its
# class. The article stays "a" (also before "orange") to match the
# "a photo of a {}." prompt used downstream.
CAPTION_TEMPLATES: Tuple[str, ...] = (
    'a photo of a {}.',
    'a {} on a noisy background.',
    'an image showing a {}.',
    'a low resolution picture of a {}.',
    'a drawing of a {}.',
    'there is a {} in this image.',
    'a rendering of a {}.',
    'a {} in the picture.',
)

DOMAINS: Tuple[str, ...] = ('target', 'pretrain')
SPLITS: Tuple[str, ...] = ('train', 'val', 'test')
# Caption pairs get their own stream so they never repeat CoOp images.
_CAPTION_STREAM = 3

# Smallest count where both halves can share all attributes with distinct
# classes (two novel classes are needed to use two values of anything).
MIN_CLASSES = 4
MAX_CLASSES = len(COLOURS) * len(PATTERNS) * len(SHAPES)

IMAGE_DIR = 'images'
SPLIT_FILE = 'split_shapes.json'
CLASSNAMES_FILE = 'classnames.txt'
MARKER_FILE = 'generator.json'
# Bump whenever rendering or class selection changes, so that directories
# written by an older generator are not silently mixed with new output.
FORMAT_VERSION = 1
# Written into generated folders; stable, so that they stay reusable.
_GENERATOR_ID = 'mmpromptkd.datasets.synthetic_shapes'

# Fixed, independent of the image seed: the class list is part of the
# benchmark definition, not of a run.
_CLASS_ORDER_SEED = 20240601

# Per-domain appearance. Sizes are the shape's bounding diameter as a
# fraction of the image side.
_DOMAIN_STYLE = {
    'target': dict(size_range=(0.45, 0.75), noise_range=(2.0, 7.0)),
    'pretrain': dict(size_range=(0.30, 0.90), noise_range=(8.0, 18.0)),
}

Combo = Tuple[int, int, int]


def _combo_name(combo: Combo) -> str:
    return f'{COLOURS[combo[0]]} {PATTERNS[combo[1]]} {SHAPES[combo[2]]}'


def _all_combos() -> List[Combo]:
    return list(
        itertools.product(
            range(len(COLOURS)), range(len(PATTERNS)), range(len(SHAPES))))


def _check_num_classes(num_classes: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(
            f'num_classes must be an int, got {type(num_classes).__name__}')
    if not MIN_CLASSES <= num_classes <= MAX_CLASSES:
        raise ValueError(
            f'num_classes must be in [{MIN_CLASSES}, {MAX_CLASSES}] '
            f'({len(COLOURS)} colours x {len(PATTERNS)} patterns x '
            f'{len(SHAPES)} shapes), got {num_classes}')


@functools.lru_cache(maxsize=None)
def _select_combos(num_classes: int) -> Tuple[Combo, ...]:
    """Base half, then novel half, picked greedily by coverage and balance.
    """
    _check_num_classes(num_classes)
    n_base = math.ceil(num_classes / 2)
    n_novel = num_classes - n_base
    sizes = (len(COLOURS), len(PATTERNS), len(SHAPES))
    used = [min(s, n_novel) for s in sizes]
    candidates = list(itertools.product(*(range(k) for k in used)))
    rank_order = np.random.default_rng(_CLASS_ORDER_SEED).permutation(
        len(candidates))
    rank = {candidates[i]: r for r, i in enumerate(rank_order)}

    targets = (n_base, n_novel)
    picks: Tuple[List[Combo], List[Combo]] = ([], [])
    usage = [[np.zeros(k, dtype=np.int64) for k in used] for _ in targets]
    taken = set()
    while any(len(p) < t for p, t in zip(picks, targets)):
        for half, target in enumerate(targets):
            if len(picks[half]) >= target:
                continue
            counts = usage[half]

            def score(c: Combo, counts=counts) -> Tuple[int, int, int]:
                new = sum(int(counts[a][c[a]] == 0) for a in range(3))
                load = sum(int(counts[a][c[a]]) for a in range(3))
                return (-new, load, rank[c])

            best = min((c for c in candidates if c not in taken), key=score)
            taken.add(best)
            picks[half].append(best)
            for a in range(3):
                counts[a][best[a]] += 1

    # The coverage property is the point of the benchmark: never hand out a
    # class list that breaks it.
    for a in range(3):
        base_vals = {c[a] for c in picks[0]}
        novel_vals = {c[a] for c in picks[1]}
        if base_vals != novel_vals or len(base_vals) != used[a]:
            raise RuntimeError(
                f'class selection for num_classes={num_classes} failed to '
                'share every attribute between base and novel classes')
    return tuple(picks[0] + picks[1])


def list_class_names(num_classes: int = 40) -> List[str]:
    """Class names by label (the first ``ceil(n/2)`` are base)."""
    return [_combo_name(c) for c in _select_combos(num_classes)]


def split_base_novel(num_classes: int = 40) -> Tuple[List[str], List[str]]:
    """Base and novel class names (first ``ceil(n/2)`` labels are base)."""
    names = list_class_names(num_classes)
    n_base = math.ceil(num_classes / 2)
    return names[:n_base], names[n_base:]


def parse_class_name(name: str) -> Tuple[str, str, str]:
    """``(colour, pattern, shape)`` of a class name."""
    parts = name.replace('_', ' ').split()
    if (len(parts) != 3 or parts[0] not in COLOUR_RGB
            or parts[1] not in PATTERNS or parts[2] not in SHAPES):
        raise ValueError(
            f'{name!r} is not "<colour> <pattern> <shape>" with colour in '
            f'{COLOURS}, pattern in {PATTERNS}, shape in {SHAPES}')
    return parts[0], parts[1], parts[2]


def class_folder(name: str) -> str:
    """Folder of a class under ``images/``, e.g. ``red_striped_circle``."""
    return '_'.join(parse_class_name(name))


def _name_to_combo(name: str) -> Combo:
    colour, pattern, shape = parse_class_name(name)
    return (COLOURS.index(colour), PATTERNS.index(pattern),
            SHAPES.index(shape))
