"""A Hugging Face tokenizer from its local files, tokenising as open_clip's
``HFTokenizer`` does, without ``transformers``."""
import json
import os.path as osp
from typing import List, Optional, Sequence

import torch
from open_clip.tokenizer import get_clean_fn

__all__ = ['LocalHFTokenizer', 'find_tokenizer_file']

#: The fast-tokenizer file of a Hugging Face tokenizer, and the settings
#: file that names its special tokens.
TOKENIZER_FILE = 'tokenizer.json'
CONFIG_FILE = 'tokenizer_config.json'


def find_tokenizer_file(name: str, cache_dir: Optional[str] = None) -> str:
    """The ``tokenizer.json`` of a tokenizer, from a folder or the local
    Hugging Face cache (nothing is downloaded).

    Args:
        name (str): A folder holding the files, or a Hugging Face hub
            repository (open_clip's ``text_cfg.hf_tokenizer_name``).
        cache_dir (str, optional): The Hugging Face cache. Defaults to its
            default place.

    Returns:
        str: The path of ``tokenizer.json``.

    Raises:
        FileNotFoundError: Saying where to place the file.
    """
    if osp.isdir(name):
        path = osp.join(name, TOKENIZER_FILE)
        if osp.isfile(path):
            return path
        raise FileNotFoundError(f'tokenizer folder {name} has no '
                                f'{TOKENIZER_FILE}')
    from huggingface_hub import try_to_load_from_cache
    found = try_to_load_from_cache(name, TOKENIZER_FILE, cache_dir=cache_dir)
    if isinstance(found, str):
        return found
    raise FileNotFoundError(
        f'the tokenizer "{name}" is not in the local Hugging Face cache and '
        f'nothing is downloaded at run time: place {TOKENIZER_FILE} and '
        f'{CONFIG_FILE} of the hub repository {name} in the cache (e.g. '
        f'`huggingface-cli download {name} {TOKENIZER_FILE} {CONFIG_FILE}` '
        'on a machine with network), or set text_cfg.hf_tokenizer_name to a '
        'folder holding them')


def _token_name(value) -> Optional[str]:
    """A special token as tokenizer_config.json writes it (a string or a
    dict with its ``content``)."""
    return value.get('content') if isinstance(value, dict) else value


class LocalHFTokenizer:
    """A Hugging Face fast tokenizer (``tokenizer.json``) that tokenises as
    open_clip's ``HFTokenizer``: each text cleaned (``clean``), the special
    tokens of the file's post-processor added, truncated and padded to
    ``context_length``; with ``strip_sep_token`` the separator becomes 0.

    The special tokens are those of ``tokenizer_config.json`` beside the
    file where it names them (``pad_token``, ``sep_token``), else the
    file's ``<pad>`` / ``[PAD]`` and ``[SEP]``.

    Args:
        path (str): The ``tokenizer.json`` file.
        context_length (int): Tokens per text.
        clean (str): open_clip's cleaning: 'whitespace', 'lower' or
            'canonicalize'. Defaults to 'whitespace'.
        strip_sep_token (bool): Replace the separator token by 0 (CLIPA's
            BERT tokenizer). Defaults to False.

    Raises:
        ValueError: If the file names no padding token.
    """

    def __init__(self, path: str, context_length: int,
                 clean: str = 'whitespace',
                 strip_sep_token: bool = False) -> None:
        from tokenizers import Tokenizer
        try:
            self._tokenizer = Tokenizer.from_file(path)
        except Exception as e:  # the Rust library raises plain Exception
            raise ValueError(f'{path}: not a Hugging Face tokenizer file '
                             f'({e})') from e
        self.context_length = context_length
        self._clean = get_clean_fn(clean)
        config = {}
        config_path = osp.join(osp.dirname(path), CONFIG_FILE)
        if osp.isfile(config_path):
            try:
                with open(config_path, encoding='utf-8') as f:
                    config = json.load(f)
            except (OSError, UnicodeDecodeError, ValueError) as e:
                raise ValueError(f'{config_path}: not a JSON file ({e})') \
                    from e
            if not isinstance(config, dict):
                raise ValueError(f'{config_path}: expected a JSON object')
        pad = self._special(config, 'pad_token', ('<pad>', '[PAD]'), path)
        self._pad_id = self._tokenizer.token_to_id(pad)
        self._sep_id = None
        if strip_sep_token:
            sep = self._special(config, 'sep_token', ('[SEP]', '</s>'), path)
            self._sep_id = self._tokenizer.token_to_id(sep)
        self.num_special = self._tokenizer.num_special_tokens_to_add(False)
        # Where a text starts: after the special tokens the post-processor
        # puts before it (a start token, or none, e.g. SigLIP's).
        probe = self._tokenizer.encode('a')
        self.start = probe.special_tokens_mask.index(0)

    def _special(self, config: dict, key: str, defaults: Sequence[str],
                 path: str) -> str:
        names = [_token_name(config.get(key))] + list(defaults)
        for name in names:
            if name and self._tokenizer.token_to_id(name) is not None:
                return name
        raise ValueError(f'{path}: no {key} (tried {names[1:]} and '
                         f'{CONFIG_FILE}\'s {key})')

    def encode(self, text: str) -> List[int]:
        """Token ids of a cleaned text, without special tokens."""
        return self._tokenizer.encode(
            self._clean(text), add_special_tokens=False).ids

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids of shape (N, context_length): each text truncated to
        leave room for the special tokens (as ``transformers`` truncates),
        the special tokens added, then padded."""
        ids = torch.full((len(texts), self.context_length), self._pad_id,
                         dtype=torch.long)
        for i, text in enumerate(texts):
            encoding = self._tokenizer.encode(
                self._clean(text), add_special_tokens=False)
            encoding.truncate(self.context_length - self.num_special)
            row = self._tokenizer.post_process(encoding).ids
            ids[i, :len(row)] = torch.tensor(row)
        if self._sep_id is not None:
            ids[ids == self._sep_id] = 0
        return ids
