"""Tokenising class prompts with a text tower's tokenizer: CLIP's BPE
tokenizer, or a Hugging Face tokenizer from its local files."""
import functools
from typing import Optional, Sequence, Union

import torch
from open_clip.tokenizer import SimpleTokenizer

from .hf_tokenizer import LocalHFTokenizer, find_tokenizer_file

Tokenizer = Union[SimpleTokenizer, LocalHFTokenizer]

#: open_clip's ``tokenizer_kwargs`` that tokenising class prompts follows.
HF_TOKENIZER_SETTINGS = ('clean', 'strip_sep_token')
#: open_clip's text cleanings (``get_clean_fn``).
CLEANINGS = ('whitespace', 'lower', 'canonicalize')


@functools.lru_cache(maxsize=None)
def shared_tokenizer(context_length: int) -> SimpleTokenizer:
    """The one CLIP tokenizer of a context length in this process.

    Built on first use (never at import), then shared: it holds only the
    BPE vocabulary and a cache of encoded words.

    Args:
        context_length (int): Tokens per text.

    Returns:
        SimpleTokenizer: open_clip's tokenizer; ``start`` and
        ``num_special`` say where a text starts (after the start token) and
        how many special tokens surround it (the start and end tokens), as
        :class:`LocalHFTokenizer` does.
    """
    tokenizer = SimpleTokenizer(context_length=context_length)
    tokenizer.start, tokenizer.num_special = 1, 2
    return tokenizer


def text_tokenizer(text_cfg: dict) -> Tokenizer:
    """The tokenizer of an open_clip text tower config.

    CLIP's BPE tokenizer, or, where ``hf_tokenizer_name`` names one, a
    Hugging Face tokenizer read from a folder or the local cache with the
    config's ``tokenizer_kwargs``.

    Args:
        text_cfg (dict): open_clip's ``text_cfg``.

    Returns:
        SimpleTokenizer | LocalHFTokenizer: One per setting in a process.

    Raises:
        FileNotFoundError: If the Hugging Face tokenizer is not local.
        ValueError: For tokenizer settings it does not follow.
    """
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
    return LocalHFTokenizer(find_tokenizer_file(name), context_length,
                            clean=clean, strip_sep_token=strip_sep_token)


def check_token_ids(tokenizer: Tokenizer, tokens: torch.Tensor,
                    vocab_size: int, texts: Sequence[str]) -> None:
    """Refuse token ids a text tower's embedding has no row for (said
    here, not as torch's ``IndexError`` inside the embedding).

    Args:
        tokenizer (SimpleTokenizer | LocalHFTokenizer): What made them.
        tokens (Tensor): Token ids, one row per text.
        vocab_size (int): Rows of the tower's token embedding.
        texts (Sequence[str]): What each row is, for the message.

    Raises:
        ValueError: Naming the tokenizer file, the text, the id and the
            vocabulary size.
    """
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


def tokenize_class_prompts(tokenizer: Tokenizer,
                           prefix: str,
                           class_names: Sequence[str],
                           context_tokens: int = 0,
                           vocab_size: Optional[int] = None) -> torch.Tensor:
    """Tokenise ``"{prefix} {name}."`` for every class name.

    Args:
        tokenizer (SimpleTokenizer | LocalHFTokenizer): The tokenizer; its
            context length bounds each prompt.
        prefix (str): The text before each name (e.g. 'a photo of a').
        class_names (Sequence[str]): Class names; ``_`` becomes a space.
        context_tokens (int): The learnable context replaces this many
            first tokens of the prefix, which must then stand at the same
            positions in every prompt. Defaults to 0.
        vocab_size (int, optional): Rows of the text tower's token
            embedding, which every id must be below. Defaults to None (not
            checked).

    Returns:
        Tensor: Token ids of shape (C, context_length).

    Raises:
        ValueError: If a prompt is longer than the context, naming it, or
            the tokenizer merges the prefix's context tokens with a name,
            or an id is beyond ``vocab_size`` (naming the tokenizer file).
    """
    context_length = tokenizer.context_length
    prompts = []
    for name in class_names:
        text = f'{prefix} {name.replace("_", " ")}.'.strip()
        if len(tokenizer.encode(text)) + tokenizer.num_special > \
                context_length:
            raise ValueError(
                f'class name "{name}": prompt "{text}" is longer than '
                f'the context length {context_length}')
        prompts.append(text)
    tokens = tokenizer(prompts)
    if vocab_size is not None:
        check_token_ids(tokenizer, tokens, vocab_size,
                        [f'class name "{name}"' for name in class_names])
    start, ids = tokenizer.start, tokenizer.encode(prefix)[:context_tokens]
    if len(ids) < context_tokens or not bool(
            (tokens[:, start:start + context_tokens] == torch.tensor(
                ids, dtype=tokens.dtype)).all()):
        raise ValueError(
            f'the tokenizer does not keep the first {context_tokens} tokens '
            f'of the prompt prefix "{prefix}" before every class name (the '
            'learnable context replaces them); choose another ctx_init')
    return tokens
