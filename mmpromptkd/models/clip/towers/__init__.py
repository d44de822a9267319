"""How prompts enter each kind of open_clip tower."""
from open_clip.timm_model import TimmModel
from open_clip.transformer import VisionTransformer
from torch import nn

from .openclip_vit_tower import OpenCLIPViTTower
from .text_tower import TextTower
from .timm_vit_tower import TimmEvaTower, TimmViTTower
from .vision_tower import VisionTower

__all__ = [
    'VisionTower', 'OpenCLIPViTTower', 'TimmViTTower', 'TimmEvaTower',
    'TextTower', 'vision_tower_of'
]


def vision_tower_of(visual: nn.Module) -> VisionTower:
    """The tower for an open_clip model's ``visual``."""
    from timm.models.eva import Eva
    from timm.models.vision_transformer import \
        VisionTransformer as TimmVisionTransformer
    if isinstance(visual, VisionTransformer):
        return OpenCLIPViTTower(visual)
    if isinstance(visual, TimmModel):
        if isinstance(visual.trunk, Eva):
            return TimmEvaTower(visual)
        if isinstance(visual.trunk, TimmVisionTransformer):
            return TimmViTTower(visual)
    return VisionTower(visual)
