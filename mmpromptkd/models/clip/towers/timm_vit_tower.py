"""timm's ViT image towers (SigLIP, SigLIP2, ViTamin) and EVA towers (EVA01
/ EVA02, PE-Core, with rotary positions), split where prompts enter."""
from typing import Callable, Optional, Tuple

import torch
from torch import nn

from .vision_tower import VisionTower


class TimmViTTower(VisionTower):
    """An open_clip ``TimmModel`` whose trunk is a timm ``VisionTransformer``
    (prompts join before the trunk's ``norm_pre``)."""

    takes_prompts = True

    def __init__(self, visual: nn.Module) -> None:
        super().__init__(visual)
        #: The timm model.
        self.trunk = visual.trunk
        self.prompt_width = self.trunk.embed_dim
        self.blocks = self.trunk.blocks

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


class TimmEvaTower(TimmViTTower):
    """An open_clip ``TimmModel`` whose trunk is a timm ``Eva``; prompt
    tokens take the identity rotation, unrotated as the class token."""

    def embed(self, images: torch.Tensor) -> Tuple[torch.Tensor, object]:
        # Eva's own position step (private in timm 1.0; see TimmViTTower).
        return self.trunk._pos_embed(self.trunk.patch_embed(
            images.to(self.dtype)))

    def block_function(self, index: int, rope: Optional[torch.Tensor],
                       num_prompts: int) -> Callable:
        if rope is not None and num_prompts:
            rope = _with_identity_rows(rope, num_prompts)
        if rope is not None and getattr(self.trunk, 'rope_mixed', False):
            rope = rope[index]  # one rotation per block
        block = self.blocks[index]
        return lambda x, attn_mask: block(x, rope=rope, attn_mask=attn_mask)


def _with_identity_rows(rope: torch.Tensor, rows: int) -> torch.Tensor:
    """Append ``rows`` rotations by zero to a ``[sin, cos]`` embedding."""
    sin, cos = rope.chunk(2, dim=-1)
    shape = list(sin.shape)
    shape[-2] = rows
    return torch.cat([
        torch.cat([sin, sin.new_zeros(shape)], dim=-2),
        torch.cat([cos, cos.new_ones(shape)], dim=-2)
    ], dim=-1)
