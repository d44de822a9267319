"""Tokenising class prompts with a text tower's tokenizer (CLIP's BPE
tokenizer, or a Hugging Face tokenizer from its local files), and encoding
class names in batches."""
import functools
from typing import Optional, Sequence, Union

import torch
from torch import nn
from open_clip.tokenizer import SimpleTokenizer

from .hf_tokenizer import LocalHFTokenizer, find_tokenizer_file

Tokenizer = Union[SimpleTokenizer, LocalHFTokenizer]

#: open_clip's ``tokenizer_kwargs`` that tokenising class prompts follows.
HF_TOKENIZER_SETTINGS = ('clean', 'strip_sep_token')
#: open_clip's text cleanings (``get_clean_fn``).
CLEANINGS = ('whitespace', 'lower', 'canonicalize')


@functools.lru_cache(maxsize=None)
def shared_tokenizer(context_length: int) -> SimpleTokenizer:
    """The one CLIP tokenizer of a context length in this process, with
    ``start`` and ``num_special`` as :class:`LocalHFTokenizer` has them."""
    tokenizer = SimpleTokenizer(context_length=context_length)
    tokenizer.start, tokenizer.num_special = 1, 2
    return tokenizer


def text_tokenizer(text_cfg: dict) -> Tokenizer:
    """The tokenizer (one per setting in a process) of an open_clip
    ``text_cfg``: CLIP's BPE one or the local ``hf_tokenizer_name``."""
    context_length = text_cfg.get('context_length', 77)
    name = text_cfg.get('hf_tokenizer_name')
    if not name:
        return shared_tokenizer(context_length)
    kwargs = text_cfg.get('tokenizer_kwargs') or {}
    if not isinstance(kwargs, dict):
        raise ValueError(f'text_cfg.tokenizer_kwargs: expected a dict of '
                         f'open_clip HFTokenizer settings (tokenizer '
                         f'{name}), got {kwargs!r}')
    unknown = set(kwargs) - set(HF_TOKENIZER_SETTINGS)
    if unknown:
        raise ValueError(f'text_cfg.tokenizer_kwargs: {sorted(unknown)} are '
                         f'not followed (only {list(HF_TOKENIZER_SETTINGS)})')
    clean = kwargs.get('clean', 'whitespace')
    if clean not in CLEANINGS:
        raise ValueError(f'text_cfg.tokenizer_kwargs.clean must be one of '
                         f'{list(CLEANINGS)}, got {clean!r}')
    strip_sep_token = kwargs.get('strip_sep_token', False)
    if not isinstance(strip_sep_token, bool):
        # bool('no') would be True.
        raise ValueError(f'text_cfg.tokenizer_kwargs.strip_sep_token: '
                         f'expected a bool (tokenizer {name}), got '
                         f'{strip_sep_token!r}')
    return _hf_tokenizer(name, context_length, clean, strip_sep_token)


@functools.lru_cache(maxsize=None)
def _hf_tokenizer(name: str, context_length: int, clean: str,
                  strip_sep_token: bool) -> LocalHFTokenizer:
    """One Hugging Face tokenizer per setting in a process."""
    return LocalHFTokenizer(find_tokenizer_file(name), context_length,
                            clean=clean, strip_sep_token=strip_sep_token)


def check_token_ids(tokenizer: Tokenizer, tokens: torch.Tensor,
                    vocab_size: int, texts: Sequence[str]) -> None:
    """Refuse token ids (one row per text of ``texts``) at or beyond
    ``vocab_size``, the rows of the tower's token embedding."""
    tokens = torch.as_tensor(tokens).reshape(len(texts), -1)
    beyond = (tokens >= vocab_size).any(dim=1).nonzero()
    if len(beyond):
        row = int(beyond[0])
        first = int(tokens[row][tokens[row] >= vocab_size][0])
        source = getattr(tokenizer, 'path', "open_clip's CLIP tokenizer")
        raise ValueError(
            f'{source}: {texts[row]} has token id {first}, '
            f"beyond the text tower's vocabulary of {vocab_size} tokens (the "
            "tokenizer is not the model's)")


def tokenize_prompts(tokenizer: Tokenizer, texts: Sequence[str],
                     labels: Sequence[str],
                     vocab_size: Optional[int] = None) -> torch.Tensor:
    """Token ids (N, context_length) of full prompts, refusing one longer
    than the context or with ids at or beyond ``vocab_size``; ``labels``
    name the texts in messages."""
    context_length = tokenizer.context_length
    for text in texts:
        if len(tokenizer.encode(text)) + tokenizer.num_special > \
                context_length:
            raise ValueError(f'prompt "{text}" is longer than the context '
                             f'length {context_length}')
    tokens = tokenizer(list(texts))
    if vocab_size is not None:
        check_token_ids(tokenizer, tokens, vocab_size, labels)
    return tokens


def tokenize_class_prompts(tokenizer: Tokenizer, prefix: str,
                           class_names: Sequence[str], context_tokens: int = 0,
                           vocab_size: Optional[int] = None) -> torch.Tensor:
    """Token ids (C, context_length) of ``"{prefix} {name}."`` per class.

    Args:
        tokenizer (SimpleTokenizer | LocalHFTokenizer): The tokenizer.
        prefix (str): The text before each name (e.g. 'a photo of a').
        class_names (Sequence[str]): Class names; ``_`` becomes a space.
        context_tokens (int): First prefix tokens the learnable context
            replaces; they must keep their positions in every prompt.
        vocab_size (int, optional): Token embedding rows to check ids
            against.
    """
    prompts = [f'{prefix} {name.replace("_", " ")}.'.strip()
               for name in class_names]
    tokens = tokenize_prompts(
        tokenizer, prompts, [f'class name "{name}"' for name in class_names],
        vocab_size)
    start, ids = tokenizer.start, tokenizer.encode(prefix)[:context_tokens]
    if len(ids) < context_tokens or not bool(
            (tokens[:, start:start + context_tokens] == torch.tensor(
                ids, dtype=tokens.dtype)).all()):
        raise ValueError(
            f'the tokenizer does not keep the first {context_tokens} tokens '
            f'of the prompt prefix "{prefix}" before every class name (the '
            'learnable context replaces them); choose another ctx_init')
    return tokens


def encode_class_names(model: nn.Module, class_names: Sequence[str],
                       batch_size: int) -> torch.Tensor:
    """Normalised float text features (C, D) of ``class_names``,
    ``batch_size`` names per forward of ``model.encode_text``."""
    return torch.cat([
        model.encode_text(class_names[i:i + batch_size],
                          normalize=True).float()
        for i in range(0, len(class_names), batch_size)])
