"""An image tower that runs whole, and what every image tower tells."""
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

#: Tower classes without a token sequence.
CONVOLUTIONAL = ('ModifiedResNet', 'ConvNeXt', 'FastVit', 'ResNet')


class VisionTower:
    """An image tower (``clip.visual``) run as it is, without prompts.

    Subclasses split a transformer tower into the steps prompts enter
    between: ``embed(images)`` gives the tokens before the pre-norm and what
    every block needs; ``pre_norm(x)`` normalises all tokens before the
    first block; ``block_function(index, context, num_prompts)`` gives
    ``f(x, attn_mask)`` running block ``index`` on batch-first tokens whose
    last ``num_prompts`` are prompts; ``head(x)`` pools and projects the
    tokens (prompts removed).
    """

    #: Whether deep visual prompts can enter this tower.
    takes_prompts = False
    #: Width of a prompt token; None without tokens.
    prompt_width: Optional[int] = None
    #: The blocks prompts are replaced between.
    blocks: Sequence[nn.Module] = ()

    def __init__(self, visual: nn.Module) -> None:
        self.visual = visual

    @property
    def no_prompts_reason(self) -> str:
        """str: Why this tower takes no visual prompts."""
        trunk = getattr(self.visual, 'trunk', self.visual)
        name = type(trunk).__name__
        if name in CONVOLUTIONAL:
            return (f'the image tower ({name}) is convolutional: it has no '
                    'token sequence that visual prompts could join')
        return (f'visual prompts join open_clip\'s ViT and timm\'s '
                f'VisionTransformer and Eva towers, not {name}')

    @property
    def image_size(self) -> Tuple[int, int]:
        """tuple[int, int]: Input resolution."""
        size = self.visual.image_size
        return tuple(size) if isinstance(size, (tuple, list)) else (size, size)

    @property
    def dtype(self) -> torch.dtype:
        """torch.dtype: The input's dtype (embeddings may be kept in fp32)."""
        return next(m.weight.dtype for m in self.visual.modules()
                    if isinstance(m, (nn.Conv2d, nn.Linear)))
