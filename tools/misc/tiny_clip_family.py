"""The config's own CLIP family, scaled down (same tower classes, pooling,
tokens, text tower, embedding dimension), for ``dry_run.py --tiny``."""
import contextlib
from typing import Iterator, List

from scaled_open_clip import scale_model_cfg, small_timm_trunks

#: Image size of every tiny model (the dry run's pipelines resize to it).
TINY_IMAGE_SIZE = 32
#: Patch size of the tiny ViTs (a 4 x 4 grid).
TINY_PATCH_SIZE = 8
#: Blocks of each tiny transformer tower.
TINY_LAYERS = 3
#: The deepest prompts: below TINY_LAYERS, so unprompted blocks run too.
TINY_PROMPT_DEPTH = 2
#: Prompt depth settings of the prompt learners.
PROMPT_DEPTH_KEYS = ('vision_prompt_depth', 'text_prompt_depth',
                     'prompt_depth')


def tiny_model_cfg(model_cfg: dict) -> dict:
    """A tiny copy of an open_clip model config."""
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
    """Until the context ends, timm builds every trunk tiny (once, nested).
    """
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
    """Clamp a prompt learner's depths to the tiny towers; a note each."""
    notes = []
    for key in PROMPT_DEPTH_KEYS:
        depth = node.get(key)
        if depth and depth > TINY_PROMPT_DEPTH:
            node[key] = TINY_PROMPT_DEPTH
            notes.append(f'{where}.{key} {depth} -> {TINY_PROMPT_DEPTH}')
    return notes
