"""timm's ViT image towers (SigLIP, SigLIP2, ViTamin), split where prompts
enter."""
from typing import Callable, Sequence, Tuple

import torch
from torch import nn

from .vision_tower import VisionTower


class TimmViTTower(VisionTower):
    """An open_clip ``TimmModel`` whose trunk is a timm ``VisionTransformer``.

    Prompts join before the trunk's ``norm_pre``.
    """

    takes_prompts = True

    @property
    def trunk(self) -> nn.Module:
        """nn.Module: The timm model."""
        return self.visual.trunk

    @property
    def prompt_width(self) -> int:
        return self.trunk.embed_dim

    @property
    def blocks(self) -> Sequence[nn.Module]:
        return self.trunk.blocks

    def embed(self, images: torch.Tensor) -> Tuple[torch.Tensor, object]:
        trunk = self.trunk
        x = trunk.patch_embed(images.to(self.dtype))
        # timm's own position step (private in timm 1.0; the depth-0
        # parity tests hold it to the trunk's forward).
        x = trunk._pos_embed(x)
        return trunk.patch_drop(x), None

    def pre_norm(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk.norm_pre(x)

    def block_function(self, index: int, context: object,
                       num_prompts: int) -> Callable:
        block = self.blocks[index]
        return lambda x, attn_mask: block(x, attn_mask=attn_mask)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        trunk = self.trunk
        return self.visual.head(trunk.forward_head(trunk.norm(x)))
