"""The config's own CLIP family, scaled down, for ``dry_run.py --tiny``.

A tiny model of a weight source keeps what the config's prompts, pooling
and tokenizer depend on: the tower classes (open_clip's ViT or
ModifiedResNet, timm's EVA, PE, SigLIP ViT, FastViT or ConvNeXt trunk),
pooling, class or register tokens, the custom text tower and its
settings, context length, embedding dimension and logit bias. Widths and
depths shrink (:mod:`scaled_open_clip`: width 64, :data:`TINY_LAYERS`
blocks, the smallest convolutional stages), and so do images: 32 px in
8 px patches. timm trunks are scaled as they are built, inside
:func:`tiny_timm_trunks`; a Hugging Face tokenizer is replaced by a small
one of the same layout (:mod:`small_hf_tokenizer`).
"""
import contextlib
import os.path as osp
import sys
from typing import Iterator, List

_HERE = osp.dirname(osp.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from scaled_open_clip import scale_model_cfg, small_timm_trunks  # noqa: E402

__all__ = [
    'TINY_IMAGE_SIZE', 'TINY_LAYERS', 'TINY_PROMPT_DEPTH', 'tiny_model_cfg',
    'tiny_timm_trunks', 'clamp_prompt_depths'
]

#: Image size of every tiny model (the dry run's pipelines resize to it).
TINY_IMAGE_SIZE = 32
#: Patch size of the tiny ViTs (a 4 x 4 grid).
TINY_PATCH_SIZE = 8
#: Blocks of each tiny transformer tower.
TINY_LAYERS = 3
#: The deepest prompts of a tiny model: below :data:`TINY_LAYERS`, so that
#: both prompted and unprompted blocks run.
TINY_PROMPT_DEPTH = 2
#: Prompt depth settings of the prompt learners.
PROMPT_DEPTH_KEYS = ('vision_prompt_depth', 'text_prompt_depth',
                     'prompt_depth')


def tiny_model_cfg(model_cfg: dict) -> dict:
    """A tiny copy of an open_clip model config, of the same family.

    Args:
        model_cfg (dict): The real architecture (``embed_dim``,
            ``vision_cfg``, ``text_cfg``, ...).

    Returns:
        dict: The tiny config; build it inside :func:`tiny_timm_trunks`
        where it has a timm trunk.
    """
    cfg = scale_model_cfg(model_cfg, layers=TINY_LAYERS)
    vision = cfg['vision_cfg']
    vision['image_size'] = TINY_IMAGE_SIZE
    if not vision.get('timm_model_name') and \
            not isinstance(vision.get('layers'), (list, tuple)):
        vision['patch_size'] = TINY_PATCH_SIZE  # open_clip's own ViT
    return cfg


_active = []


@contextlib.contextmanager
def tiny_timm_trunks() -> Iterator[None]:
    """Until the context ends, timm builds every trunk tiny: transformer
    trunks of :data:`TINY_LAYERS` blocks, 64 wide, for 32 px images in
    8 px patches; convolutional ones with their smallest stages. Within
    itself it changes nothing (a trunk is scaled once)."""
    if _active:
        yield
        return
    _active.append(True)
    try:
        with small_timm_trunks(
                layers=TINY_LAYERS,
                image=dict(img_size=TINY_IMAGE_SIZE,
                           patch_size=TINY_PATCH_SIZE)):
            yield
    finally:
        _active.pop()


def clamp_prompt_depths(node: dict, where: str) -> List[str]:
    """Clamp the prompt depths of a prompt learner to the tiny towers.

    Args:
        node (dict): The prompt learner's config; modified in place.
        where (str): Its place in the config, for the notes.

    Returns:
        list[str]: One note per clamped depth, e.g.
        ``'model.student.vision_prompt_depth 9 -> 2'``.
    """
    notes = []
    for key in PROMPT_DEPTH_KEYS:
        depth = node.get(key)
        if depth and depth > TINY_PROMPT_DEPTH:
            node[key] = TINY_PROMPT_DEPTH
            notes.append(f'{where}.{key} {depth} -> {TINY_PROMPT_DEPTH}')
    return notes
