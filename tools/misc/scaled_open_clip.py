"""Scaled-down copies of open_clip's model configurations, for tests: the
real tower classes, pooling and tokens, with 2 blocks of width 64 (or the
smallest convolutional stages)."""
import contextlib
import copy
from typing import Iterator, Optional

import open_clip
import timm
from timm.models.vitamin import VitCfg, VitConvCfg

#: Scaled sizes of transformer towers.
WIDTH, LAYERS, HEAD_WIDTH = 64, 2, 32


def timm_scalings(layers: int = LAYERS) -> tuple:
    """timm keyword arguments that scale a trunk to ``layers`` blocks, in
    the order tried."""
    return (
        # ViTamin: a convolutional stem ending at the transformer's width
        # (first: other classes refuse embed_cfg before building anything).
        dict(depth=layers, embed_dim=WIDTH, num_heads=WIDTH // HEAD_WIDTH,
             embed_cfg=VitCfg(embed_dim=(16, 32, WIDTH), depths=(1, 1, 1),
                              stem_width=16, head_type='1d',
                              conv_cfg=VitConvCfg(
                                  norm_layer='layernorm2d'))),
        dict(depth=layers, embed_dim=WIDTH, num_heads=WIDTH // HEAD_WIDTH),
        # A stem of fixed width (MobileCLIP-B): fewer blocks only.
        dict(depth=layers),
        dict(depths=(1, 1, 1, 1), dims=(16, 32, 64, 128)),
        dict(depths=(1, 1, 1, 1), embed_dim=16, num_heads=(1, 2, 4, 8)),
        dict(layers=(1, 1, 1, 1), embed_dims=(16, 32, 64, 128)),
    )


def scaled_model_cfg(name: str) -> dict:
    """The open_clip config of a model name, with small towers."""
    return scale_model_cfg(open_clip.get_model_config(name))


def scale_model_cfg(model_cfg: dict, layers: int = LAYERS) -> dict:
    """A copy of an open_clip model config with towers of ``layers`` blocks.
    """
    cfg = copy.deepcopy(dict(model_cfg))
    cfg.pop('quick_gelu', None)  # a source setting: quick_gelu_of(name)
    vision, text = cfg['vision_cfg'], cfg.get('text_cfg', {})
    if vision.get('timm_proj') == 'none':
        # The trunk's own width is the feature width (SigLIP).
        cfg['embed_dim'] = WIDTH
    if not vision.get('timm_model_name'):
        if isinstance(vision.get('layers'), (list, tuple)):  # ResNet
            vision.update(layers=[1, 1, 1, 1], width=16, head_width=16)
        else:
            vision.update(width=WIDTH, layers=layers, head_width=HEAD_WIDTH)
            if vision.get('attentional_pool'):
                vision.update(attn_pooler_heads=2)
    if not text.get('hf_model_name'):
        text.update(width=WIDTH, heads=WIDTH // HEAD_WIDTH, layers=layers)
    if text.get('hf_tokenizer_name'):
        # A small stand-in tokenizer's ids reach it in tests.
        text['vocab_size'] = min(text.get('vocab_size', 49408), 49408)
    if cfg.get('multimodal_cfg'):
        cfg['multimodal_cfg'].update(width=WIDTH, heads=2, layers=1)
    return cfg


@contextlib.contextmanager
def small_timm_trunks(layers: int = LAYERS,
                      image: Optional[dict] = None) -> Iterator[None]:
    """Until the context ends, ``timm.create_model`` builds small trunks of
    the same class, with the ``image`` settings where the class takes them.
    """
    create = timm.create_model
    scalings = timm_scalings(layers)
    tries = [dict(scaling, **image) for scaling in scalings] + \
        list(scalings) if image else list(scalings)

    def create_small(model_name, *args, **kwargs):
        for scaling in tries:
            try:
                return create(model_name, *args, **scaling, **kwargs)
            except (TypeError, AssertionError, ValueError):
                continue  # not this class's settings: the next scaling
        return create(model_name, *args, **kwargs)  # full size

    timm.create_model = create_small
    try:
        yield
    finally:
        timm.create_model = create


def quick_gelu_of(name: str) -> bool:
    """Whether open_clip builds ``name`` with QuickGELU."""
    return bool(open_clip.get_model_config(name).get('quick_gelu', False))
