"""timm's EVA image towers (EVA01 / EVA02, PE-Core), with rotary positions
that prompts do not take."""
from typing import Callable, Optional, Tuple

import torch

from .timm_vit_tower import TimmViTTower


class TimmEvaTower(TimmViTTower):
    """An open_clip ``TimmModel`` whose trunk is a timm ``Eva``.

    Prompt tokens take the identity rotation, unrotated as the class token.
    """

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
