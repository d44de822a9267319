"""The text tower of an open_clip model, wherever the model keeps it."""
import torch
from open_clip.transformer import TextTransformer
from torch import nn

#: The parts of an open_clip ``CLIP`` that only text encoding uses.
CLIP_TEXT_PARTS = ('transformer', 'token_embedding', 'positional_embedding',
                   'ln_final', 'text_projection', 'attn_mask')


class TextTower:
    """open_clip's text transformer in a ``CLIP`` or ``CustomTextCLIP``
    (refused, saying why, where prompts cannot enter it)."""

    def __init__(self, clip: nn.Module) -> None:
        text = getattr(clip, 'text', None)
        if text is None:
            self.module = clip
            self.pool_type = clip.text_pool_type
            self.eos_id = getattr(clip, 'text_eos_id', None)
        elif isinstance(text, TextTransformer):
            self.module = text
            self.pool_type = text.pool_type
            self.eos_id = text.eos_id
        else:
            raise ValueError(
                f'the text tower ({type(text).__name__}) is a Hugging Face '
                'text model: text prompts need open_clip\'s own text '
                'transformer; use this model with text_tower=False (an '
                'image-only student)')
        if getattr(self.module, 'cls_emb', None) is not None or getattr(
                self.module, 'use_pad_mask', False):
            raise ValueError('the text tower appends a class token or masks '
                             'padding (CoCa): text prompts are not supported '
                             'for it')
        if self.pool_type not in ('argmax', 'eos', 'last', 'first'):
            raise ValueError(f'the text tower pools with "{self.pool_type}"'
                             ', which gives no single feature per text')
        #: Tokens per text, and the width of a token (and a text prompt).
        self.context_length = self.module.context_length
        self.width = self.module.token_embedding.weight.shape[1]

    def pool_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """The (N, ) positions of the features of (N, L) token ids."""
        if self.pool_type == 'argmax':
            return tokens.argmax(dim=-1)
        if self.pool_type == 'eos':
            return (tokens == self.eos_id).int().argmax(dim=-1)
        position = 0 if self.pool_type == 'first' else tokens.shape[1] - 1
        return torch.full((tokens.shape[0], ), position, dtype=torch.long,
                          device=tokens.device)


def drop_text_tower(clip: nn.Module) -> None:
    """Delete the text tower of a ``CLIP`` or ``CustomTextCLIP``."""
    for name in ('text', ) if hasattr(clip, 'text') else CLIP_TEXT_PARTS:
        if hasattr(clip, name):
            delattr(clip, name)
