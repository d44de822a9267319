"""open_clip's own ViT image tower, split where prompts enter."""
from typing import Callable, Tuple

import torch
from torch import nn

from .vision_tower import VisionTower


class OpenCLIPViTTower(VisionTower):
    """open_clip's ``VisionTransformer`` (OpenAI, LAION, DFN, MetaCLIP);
    prompts join before ``ln_pre``, as in the official IVLP / PromptKD code.
    """

    takes_prompts = True

    def __init__(self, visual: nn.Module) -> None:
        super().__init__(visual)
        self.prompt_width = visual.conv1.out_channels
        self.blocks = visual.transformer.resblocks

    def embed(self, images: torch.Tensor) -> Tuple[torch.Tensor, None]:
        visual = self.visual
        x = visual.conv1(images.to(self.dtype))
        x = x.flatten(2).transpose(1, 2)
        cls_token = visual.class_embedding.to(x.dtype).expand(
            x.shape[0], 1, -1)
        x = torch.cat([cls_token, x], dim=1)
        return x + visual.positional_embedding.to(x.dtype), None

    def pre_norm(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual.ln_pre(x)

    def block_function(self, index: int, context: None,
                       num_prompts: int) -> Callable:
        return batch_first_block(self.blocks[index],
                                 self.visual.transformer.batch_first)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        # The tower's own pooling (private in open_clip 3.3; the depth-0
        # parity tests hold it to the tower's forward).
        pooled, _ = self.visual._pool(x)
        proj = self.visual.proj
        return pooled if proj is None else pooled @ proj


def batch_first_block(block: nn.Module, batch_first: bool) -> Callable:
    """``f(x, attn_mask)`` running an open_clip block on batch-first x."""

    def run(x, attn_mask):
        if not batch_first:
            x = x.transpose(0, 1)
        x = block(x, attn_mask=attn_mask)
        return x if batch_first else x.transpose(0, 1)

    return run
