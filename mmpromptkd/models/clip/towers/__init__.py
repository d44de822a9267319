"""How prompts enter each kind of open_clip tower."""
from .openclip_vit_tower import OpenCLIPViTTower
from .text_tower import TextTower
from .timm_eva_tower import TimmEvaTower
from .timm_vit_tower import TimmViTTower
from .tower_selection import vision_tower_of
from .vision_tower import VisionTower

__all__ = [
    'VisionTower', 'OpenCLIPViTTower', 'TimmViTTower', 'TimmEvaTower',
    'TextTower', 'vision_tower_of'
]
