"""Tokenising class prompts with CLIP's BPE tokenizer."""
import functools
from typing import Sequence

import torch
from open_clip.tokenizer import SimpleTokenizer


@functools.lru_cache(maxsize=None)
def shared_tokenizer(context_length: int) -> SimpleTokenizer:
    """The one CLIP tokenizer of a context length in this process.

    Built on first use (never at import), then shared: it holds only the
    BPE vocabulary and a cache of encoded words.

    Args:
        context_length (int): Tokens per text.

    Returns:
        SimpleTokenizer: open_clip's tokenizer.
    """
    return SimpleTokenizer(context_length=context_length)


def tokenize_class_prompts(tokenizer: SimpleTokenizer, prefix: str,
                           class_names: Sequence[str]) -> torch.Tensor:
    """Tokenise ``"{prefix} {name}."`` for every class name.

    Args:
        tokenizer (SimpleTokenizer): The tokenizer; its context length
            bounds each prompt.
        prefix (str): The text before each name (e.g. 'a photo of a').
        class_names (Sequence[str]): Class names; ``_`` becomes a space.

    Returns:
        Tensor: Token ids of shape (C, context_length).

    Raises:
        ValueError: If a prompt is longer than the context, naming it.
    """
    context_length = tokenizer.context_length
    prompts = []
    for name in class_names:
        text = f'{prefix} {name.replace("_", " ")}.'.strip()
        if len(tokenizer.encode(text)) + 2 > context_length:
            raise ValueError(
                f'class name "{name}": prompt "{text}" is longer than '
                f'the context length {context_length}')
        prompts.append(text)
    return tokenizer(prompts)
