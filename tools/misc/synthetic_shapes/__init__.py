"""A deterministic synthetic image domain in CoOp format: classes, rendering
and writers; see docs/synthetic_shapes.md."""
import functools
import itertools
import json
import math
import os
from pathlib import Path
from typing import Dict, Iterator, List, Tuple, Union

import numpy as np
from PIL import Image, ImageDraw

from mmpromptkd.fileio import atomic_write

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


def _unit_outline(shape: str) -> np.ndarray:
    """Polygon of a shape centred at 0, extent about [-1, 1], (K, 2)."""
    if shape == 'circle':
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        return np.stack([np.cos(t), np.sin(t)], 1)
    if shape == 'square':
        # Side 1.6: visually about as large as the circle.
        return np.array([[-.8, -.8], [.8, -.8], [.8, .8], [-.8, .8]])
    if shape == 'triangle':
        t = np.deg2rad([-90, 30, 150])
        pts = np.stack([np.cos(t), np.sin(t)], 1)
        # Centre the bounding box, not the centroid, so it fits the image.
        return pts - np.array([0, 0.25])
    if shape == 'star':
        t = np.deg2rad(np.arange(10) * 36 - 90)
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        return np.stack([r * np.cos(t), r * np.sin(t)], 1)
    if shape == 'cross':
        w = 0.32
        return np.array([[-w, -1], [w, -1], [w, -w], [1, -w], [1, w], [w, w],
                         [w, 1], [-w, 1], [-w, w], [-1, w], [-1, -w],
                         [-w, -w]])
    if shape == 'heart':
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        x = 16 * np.sin(t)**3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) -
              np.cos(4 * t))
        pts = np.stack([x, y], 1)
        pts -= (pts.max(0) + pts.min(0)) / 2
        return pts / np.abs(pts).max()
    raise ValueError(f'unknown shape {shape!r}')


_OUTLINES = {s: _unit_outline(s) for s in SHAPES}


def _pattern_mask(pattern: str, u: np.ndarray, v: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Where the secondary colour goes; u, v in shape-radius units."""
    if pattern == 'plain':
        return np.zeros(u.shape, dtype=bool)
    if pattern == 'striped':
        period = rng.uniform(0.55, 0.75)
        phase = rng.uniform(0, period)
        return np.mod(u + phase, period) < period / 2
    if pattern == 'checkered':
        cell = rng.uniform(0.42, 0.55)
        pu, pv = rng.uniform(0, cell, 2)
        return (np.floor((u + pu) / cell) + np.floor(
            (v + pv) / cell)) % 2 == 1
    if pattern == 'dotted':
        period = rng.uniform(0.55, 0.7)
        radius = 0.3 * period
        pu, pv = rng.uniform(0, period, 2)
        du = np.mod(u + pu, period) - period / 2
        dv = np.mod(v + pv, period) - period / 2
        return du * du + dv * dv < radius * radius
    raise ValueError(f'unknown pattern {pattern!r}')


def _background(domain: str, size: int, rng: np.random.Generator,
                avoid: np.ndarray) -> np.ndarray:
    """Float (size, size, 3) background at render resolution."""
    # Re-draw a few times if the background is too close to the shape
    # colour; the draws come from the per-image generator, so this stays
    # deterministic.
    for _ in range(8):
        if domain == 'target':
            # Near-grey with a slight tint and a gentle linear shading.
            base = rng.uniform(70, 190) + rng.normal(0, 8, 3)
            angle = rng.uniform(0, 2 * np.pi)
            amp = rng.uniform(0, 25)
            ramp = np.linspace(-0.5, 0.5, size)
            grad = (np.cos(angle) * ramp[None, :] +
                    np.sin(angle) * ramp[:, None]) * amp
            bg = base[None, None, :] + grad[:, :, None]
            refs = [base]
        else:
            # Two tinted colours mixed by a blotchy low-frequency field.
            grey = rng.uniform(50, 200, 2)
            tints = rng.normal(0, 35, (2, 3))
            c0, c1 = grey[0] + tints[0], grey[1] + tints[1]
            coarse = rng.uniform(0, 1, (4, 4)).astype(np.float32)
            field = np.asarray(
                Image.fromarray(coarse).resize(
                    (size, size), Image.Resampling.BILINEAR),
                dtype=np.float64)[:, :, None]
            bg = c0 * (1 - field) + c1 * field
            refs = [c0, c1]
        if min(np.linalg.norm(np.clip(r, 0, 255) - avoid) for r in refs) > 70:
            break
    return np.clip(bg, 0, 255)


def _render(combo: Combo, image_size: int, domain: str,
            rng: np.random.Generator) -> Image.Image:
    colour, pattern, shape = (COLOURS[combo[0]], PATTERNS[combo[1]],
                              SHAPES[combo[2]])
    style = _DOMAIN_STYLE[domain]
    # Draw at >= ~128 px and box-filter down: anti-aliased edges and
    # patterns at small sizes without slowing large ones much.
    ss = max(2, min(4, math.ceil(128 / image_size)))
    big = image_size * ss

    # Slight colour jitter: brightness gain plus per-channel offset.
    fill = np.array(COLOUR_RGB[colour], dtype=np.float64)
    fill = np.clip(fill * rng.uniform(0.88, 1.12) + rng.normal(0, 10, 3), 0,
                   255)
    # Pattern's second colour: a light tint or a dark shade of the fill.
    if rng.random() < 0.5:
        second = fill + (255 - fill) * rng.uniform(0.65, 0.8)
    else:
        second = fill * rng.uniform(0.25, 0.4)

    # The background is smooth, so it is drawn at output resolution; only
    # the shape and its pattern need supersampling.
    bg = _background(domain, image_size, rng, fill)

    diameter = rng.uniform(*style['size_range']) * big
    radius = diameter / 2
    # Keep the whole shape inside the image.
    lo, hi = radius, big - radius
    cx, cy = rng.uniform(lo, hi, 2) if hi > lo else (big / 2, big / 2)
    theta = rng.uniform(0, 2 * np.pi)
    cos, sin = np.cos(theta), np.sin(theta)

    pts = _OUTLINES[shape] * radius
    pts = pts @ np.array([[cos, sin], [-sin, cos]]) + np.array([cx, cy])
    # Work on the shape's bounding box only, snapped to whole output pixels.
    x0, y0 = (np.maximum(np.floor(pts.min(0)), 0) // ss * ss).astype(int)
    x1, y1 = (np.minimum(-(-np.ceil(pts.max(0) + 1) // ss) * ss,
                         big)).astype(int)
    mask_img = Image.new('L', (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(mask_img).polygon(
        (pts - np.array([x0, y0])).ravel().tolist(), fill=255)
    mask = np.asarray(mask_img, dtype=np.float32)[:, :, None] / 255.0

    # Pattern in the shape's own frame, so it rotates and scales with it.
    dx = (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx)[None, :]
    dy = (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy)[:, None]
    u = (dx * cos + dy * sin) / radius
    v = (-dx * sin + dy * cos) / radius
    sec = _pattern_mask(pattern, u, v, rng)[:, :, None]
    paint = np.where(sec, second, fill).astype(np.float32) * mask

    # Box filter down to the output size (mask coverage and paint), then
    # blend over the background.
    h, w = (y1 - y0) // ss, (x1 - x0) // ss
    cover = mask.reshape(h, ss, w, ss, 1).mean(axis=(1, 3))
    paint = paint.reshape(h, ss, w, ss, 3).mean(axis=(1, 3))
    img = bg
    box = img[y0 // ss:y0 // ss + h, x0 // ss:x0 // ss + w]
    box[...] = box * (1 - cover) + paint
    sigma = rng.uniform(*style['noise_range'])
    img = img + rng.normal(0, sigma, img.shape)
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))


def _check(image_size: int, seed: int, domain: str = 'target') -> None:
    if isinstance(image_size, bool) or not isinstance(image_size, int):
        raise TypeError(
            f'image_size must be an int, got {type(image_size).__name__}')
    if not 16 <= image_size <= 1024:
        raise ValueError(f'image_size must be in [16, 1024], got {image_size}')
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')
    if domain not in DOMAINS:
        raise ValueError(f'domain must be one of {DOMAINS}, got {domain!r}')


def _image_rng(seed: int, domain: str, stream: int, combo: Combo,
               index: int) -> np.random.Generator:
    # Attributes (not the label) enter the seed: a class keeps its images
    # whatever num_classes is, and generation order never matters.
    return np.random.default_rng(
        [seed, DOMAINS.index(domain), stream, *combo, index])


def render_image(class_name: str, image_size: int = 32, seed: int = 0,
                 split: str = 'train', index: int = 0,
                 domain: str = 'target') -> Image.Image:
    """Render one image, exactly as the dataset generator would.

    Args:
        class_name (str): ``"<colour> <pattern> <shape>"``.
        image_size (int): Side in pixels, in ``[16, 1024]``.
        seed (int): Non-negative global seed.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        index (int): Index of the image within its class and split.
        domain (str): ``'target'`` or ``'pretrain'``.
    """
    _check(image_size, seed, domain)
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    if index < 0:
        raise ValueError(f'index must be non-negative, got {index}')
    combo = _name_to_combo(class_name)
    rng = _image_rng(seed, domain, SPLITS.index(split), combo, index)
    return _render(combo, image_size, domain, rng)


def make_caption(class_name: str,
                 template: Union[int, np.random.Generator, None] = None
                 ) -> str:
    """Caption of a class from a template index, drawn by a generator, or
    the first of :data:`CAPTION_TEMPLATES`."""
    parse_class_name(class_name)
    if template is None:
        idx = 0
    elif isinstance(template, np.random.Generator):
        idx = int(template.integers(len(CAPTION_TEMPLATES)))
    else:
        idx = int(template)
    return CAPTION_TEMPLATES[idx].format(class_name)


def iter_caption_pairs(n: int, image_size: int = 32,
                       seed: int = 0) -> Iterator[Tuple[Image.Image, str]]:
    """Yield ``n`` (image, caption) pairs of the 'pretrain' domain, every
    class in a seed-dependent order, never a CoOp dataset's images."""
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f'n must be a positive int, got {n!r}')
    _check(image_size, seed)
    combos = _all_combos()
    order = np.random.default_rng([seed, _CAPTION_STREAM]).permutation(
        len(combos))
    for i in range(n):
        combo = combos[order[i % len(combos)]]
        rng = _image_rng(seed, 'pretrain', _CAPTION_STREAM, combo,
                         i // len(combos))
        image = _render(combo, image_size, 'pretrain', rng)
        yield image, make_caption(_combo_name(combo), rng)


def generate_caption_pairs(n: int, image_size: int = 32,
                           seed: int = 0) -> List[Tuple[Image.Image, str]]:
    """:func:`iter_caption_pairs` as a list."""
    return list(iter_caption_pairs(n, image_size, seed))


def _claim_out_dir(out_dir: Union[str, os.PathLike],
                   arguments: Dict) -> Tuple[Path, tuple, List[str]]:
    """Check, refuse foreign directories, mark; ``(out, combos, names)``."""
    _check_num_classes(arguments['num_classes'])
    for key, value in arguments.items():
        if key.endswith('per_class') and (
                isinstance(value, bool) or not isinstance(value, int)
                or value <= 0):
            raise ValueError(f'{key} must be a positive int, got {value!r}')
    first_index = arguments.get('first_index', 0)
    if isinstance(first_index, bool) or not isinstance(
            first_index, int) or first_index < 0:
        raise ValueError(f'first_index must be a non-negative int, got '
                         f'{first_index!r}')
    _check(arguments['image_size'], arguments['seed'], arguments['domain'])
    combos = _select_combos(arguments['num_classes'])
    out = Path(out_dir)
    marker = dict(generator=_GENERATOR_ID, format_version=FORMAT_VERSION,
                  arguments=arguments)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f'{out} exists and is not a directory')
    marker_path = out / MARKER_FILE
    if out.is_dir() and any(out.iterdir()):
        if not marker_path.is_file():
            raise FileExistsError(
                f'refusing to write into {out}: the directory is not empty '
                f'and has no {MARKER_FILE}, so it was not produced by this '
                'generator; choose an empty or new directory')
        try:
            previous = json.loads(marker_path.read_text(encoding='utf-8'))
        except ValueError as e:
            raise FileExistsError(
                f'refusing to write into {out}: {marker_path} is not valid '
                'JSON') from e
        if not isinstance(previous, dict) or (
                previous.get('generator') != marker['generator']
                or previous.get('format_version') != FORMAT_VERSION):
            raise FileExistsError(
                f'refusing to write into {out}: {marker_path} does not come '
                f'from this generator version (format {FORMAT_VERSION}); '
                'delete the directory or choose another one')
        if previous != marker:
            raise FileExistsError(
                f'refusing to write into {out}: it was generated with '
                f'different settings ({previous.get("arguments")} vs '
                f'{marker["arguments"]}); delete it or choose another '
                'directory')
    out.mkdir(parents=True, exist_ok=True)
    # Written first: an interrupted run can be resumed by re-running with
    # the same arguments. The split file, written last, marks completion.
    atomic_write(json.dumps(marker, indent=2) + '\n', str(marker_path))
    return out, combos, [_combo_name(c) for c in combos]


def generate_coop_dataset(out_dir: Union[str, os.PathLike],
                          num_classes: int = 40, train_per_class: int = 64,
                          val_per_class: int = 10, test_per_class: int = 50,
                          image_size: int = 32, seed: int = 0,
                          domain: str = 'target') -> Dict:
    """Write a synthetic-shapes dataset in CoOp format (layout:
    docs/synthetic_shapes.md); the same arguments rewrite the same bytes.

    Args:
        out_dir (str | os.PathLike): Missing, empty, or written alike.
        num_classes (int): Number of classes.
        train_per_class (int): Train images per class.
        val_per_class (int): Validation images per class.
        test_per_class (int): Test images per class.
        image_size (int): Image side in pixels.
        seed (int): Non-negative image seed (not of the class list).
        domain (str): ``'target'`` or the shifted ``'pretrain'``.

    Returns:
        dict: ``out_dir``, ``class_names``, ``num_base``, ``counts``.
    """
    out, combos, names = _claim_out_dir(out_dir, dict(
        num_classes=num_classes, train_per_class=train_per_class,
        val_per_class=val_per_class, test_per_class=test_per_class,
        image_size=image_size, seed=seed, domain=domain))
    per_split = dict(train=train_per_class, val=val_per_class,
                     test=test_per_class)
    folders = [class_folder(n) for n in names]
    image_root = out / IMAGE_DIR
    split_data: Dict[str, List[list]] = {s: [] for s in SPLITS}
    for label, (combo, name, folder) in enumerate(zip(combos, names,
                                                      folders)):
        (image_root / folder).mkdir(parents=True, exist_ok=True)
        for stream, split in enumerate(SPLITS):
            for index in range(per_split[split]):
                rng = _image_rng(seed, domain, stream, combo, index)
                rel = f'{folder}/{split}_{index:04d}.png'
                _render(combo, image_size, domain, rng).save(
                    image_root / rel, format='PNG')
                split_data[split].append([rel, label, name])

    atomic_write(''.join(f'{f} {n}\n' for f, n in zip(folders, names)),
                 str(out / CLASSNAMES_FILE))
    atomic_write(json.dumps(split_data), str(out / SPLIT_FILE))
    return dict(out_dir=str(out), class_names=names,
                num_base=math.ceil(num_classes / 2),
                counts={s: len(v) for s, v in split_data.items()})


UNLABELED_CLASSES_FILE = 'classes.txt'


def generate_unlabeled_images(out_dir: Union[str, os.PathLike],
                              num_classes: int = 40, per_class: int = 16,
                              first_index: int = 0, image_size: int = 32,
                              seed: int = 0, domain: str = 'target') -> Dict:
    """Write train-stream images ``first_index ..`` of each class as
    ``images/<n>.png`` (classes interleaved) and ``classes.txt``; the
    arguments as for :func:`generate_coop_dataset`.

    Returns:
        dict: ``out_dir``, ``class_names`` and ``num_images``.
    """
    out, combos, names = _claim_out_dir(out_dir, dict(
        kind='unlabeled', num_classes=num_classes, per_class=per_class,
        first_index=first_index, image_size=image_size, seed=seed,
        domain=domain))
    image_root = out / IMAGE_DIR
    image_root.mkdir(parents=True, exist_ok=True)
    stream = SPLITS.index('train')
    n = 0
    for index in range(first_index, first_index + per_class):
        for combo in combos:
            rng = _image_rng(seed, domain, stream, combo, index)
            _render(combo, image_size, domain, rng).save(
                image_root / f'{n:06d}.png', format='PNG')
            n += 1
    atomic_write(''.join(f'{name}\n' for name in names),
                 str(out / UNLABELED_CLASSES_FILE))
    return dict(out_dir=str(out), class_names=names, num_images=n)
