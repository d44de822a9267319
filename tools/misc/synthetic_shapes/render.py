"""Drawing the images of the synthetic-shapes domain, and their captions."""
import math
from typing import Iterator, List, Tuple, Union

import numpy as np
from PIL import Image, ImageDraw

from .names import (_CAPTION_STREAM, _DOMAIN_STYLE, CAPTION_TEMPLATES,
                    COLOUR_RGB, COLOURS, DOMAINS, PATTERNS, SHAPES, SPLITS,
                    Combo, _all_combos, _combo_name, _name_to_combo,
                    parse_class_name)


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
