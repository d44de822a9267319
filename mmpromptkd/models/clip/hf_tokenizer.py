"""A Hugging Face tokenizer from its local files, tokenising as open_clip's
``HFTokenizer`` does, without ``transformers``."""
import json
import os.path as osp
from typing import List, Optional, Sequence

import torch
from open_clip.tokenizer import get_clean_fn

TOKENIZER_FILE = 'tokenizer.json'
CONFIG_FILE = 'tokenizer_config.json'


def find_tokenizer_file(name: str, cache_dir: Optional[str] = None) -> str:
    """The ``tokenizer.json`` of ``name`` (a folder or a hub repository in
    the local Hugging Face cache); nothing is downloaded."""
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
        f'`hf download {name} {TOKENIZER_FILE} {CONFIG_FILE}` on a machine '
        'with network; docs/inputs.md), or set text_cfg.hf_tokenizer_name to '
        'a folder holding them')


class LocalHFTokenizer:
    """A Hugging Face fast tokenizer (``tokenizer.json``) that tokenises as
    open_clip's ``HFTokenizer`` does through ``transformers``.

    Left padding is refused: a prompt's learnable context must start at the
    same position in every row.

    Args:
        path (str): The ``tokenizer.json`` file.
        context_length (int): Tokens per text.
        clean (str): open_clip's cleaning: 'whitespace', 'lower' or
            'canonicalize'.
        strip_sep_token (bool): Replace the separator token by 0 (CLIPA).
    """

    def __init__(self, path: str, context_length: int,
                 clean: str = 'whitespace',
                 strip_sep_token: bool = False) -> None:
        from tokenizers import Tokenizer
        self.path = path
        self._tokenizer = self._engine(
            'to read it (not a Hugging Face tokenizer file?)',
            Tokenizer.from_file, path)
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
        file_truncation = self._tokenizer.truncation
        file_padding = self._tokenizer.padding
        # transformers replaces the file's truncation and padding by the
        # context length at every call: off here, applied in __call__.
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.truncation_side, _ = self._side(
            config, 'truncation_side', file_truncation, config_path)
        padding_side, origin = self._side(config, 'padding_side',
                                          file_padding, config_path)
        if padding_side != 'right':
            raise ValueError(
                f"{path}: padding side '{padding_side}' ({origin}) is not "
                "supported; only 'right' (a prompt's learnable context must "
                'start at the same position in every row)')
        if 'pad_token' not in config and file_padding:
            # transformers takes the file's padding token then.
            config = dict(config, pad_token=file_padding['pad_token'])
        pad = self._special(config, 'pad_token', ('<pad>', '[PAD]'),
                            config_path)
        self._pad_id = self._tokenizer.token_to_id(pad)
        self._sep_id = self._tokenizer.token_to_id(self._special(
            config, 'sep_token', ('[SEP]', '</s>'),
            config_path)) if strip_sep_token else None
        self.num_special = self._engine(
            'to count its special tokens',
            self._tokenizer.num_special_tokens_to_add, False)
        # Where a text starts: after the special tokens the post-processor
        # puts before it (a start token, or none, e.g. SigLIP's).
        probe = self._engine('to encode "a"', self._tokenizer.encode, 'a')
        self.start = probe.special_tokens_mask.index(0)
        #: (what, token, id) of the tokens in every row.
        self.special_ids = [('padding', pad, self._pad_id)] + [
            ('special', token, i) for token, i, special in zip(
                probe.tokens, probe.ids, probe.special_tokens_mask)
            if special]

    def _engine(self, doing: str, fn, *args, **kwargs):
        """Call the engine, its failures an error naming the file."""
        try:
            return fn(*args, **kwargs)
        except BaseException as e:
            # Rust panics (pyo3_runtime.PanicException) derive from
            # BaseException; interruptions pass through.
            if not isinstance(e, Exception) and \
                    type(e).__name__ != 'PanicException':
                raise
            raise ValueError(f'{self.path}: the tokenizers library failed '
                             f'{doing} ({type(e).__name__}: {e})') from e

    def _side(self, config: dict, key: str, file_setting: Optional[dict],
              config_path: str):
        """The side transformers truncates or pads on, and its origin."""
        if key in config:
            side = config[key]
            if side not in ('left', 'right'):
                raise ValueError(f"{config_path}: {key} must be 'left' or "
                                 f"'right', got {side!r}")
            return side, f"{CONFIG_FILE}'s {key}"
        if file_setting:
            return file_setting['direction'], f'the file\'s {key[:-5]}'
        return 'right', 'the default'

    def _special(self, config: dict, key: str, defaults: Sequence[str],
                 config_path: str) -> str:
        """The special token ``key``: named in the config, else a default."""
        named = config.get(key)  # a string or a dict with its 'content'
        if isinstance(named, dict):
            named = named.get('content')
        if named is not None and not isinstance(named, str):
            raise ValueError(f'{config_path}: {key} must be a string or a '
                             f'dict with a string "content", got {named!r}')
        if named is not None:
            # transformers would add it as a new token past the vocabulary.
            if self._tokenizer.token_to_id(named) is None:
                raise ValueError(f'{config_path}: {key} {named!r} is not a '
                                 f'token of {self.path}')
            return named
        for name in defaults:
            if self._tokenizer.token_to_id(name) is not None:
                return name
        raise ValueError(f'{self.path}: no {key} (tried {list(defaults)} '
                         f'and {CONFIG_FILE}\'s {key})')

    def check_vocabulary(self, vocab_size: int) -> None:
        """Refuse a special token id beyond the tower's ``vocab_size``."""
        for what, token, i in self.special_ids:
            if i >= vocab_size:
                raise ValueError(
                    f'{self.path}: the {what} token {token!r} has id {i}, '
                    f"beyond the text tower's vocabulary of {vocab_size} "
                    'tokens (the tokenizer is not the model\'s)')

    def _encode(self, text: str):
        """The engine's encoding of a cleaned text, without special tokens."""
        return self._engine(f'to encode "{text}"', self._tokenizer.encode,
                            self._clean(text), add_special_tokens=False)

    def encode(self, text: str) -> List[int]:
        """Token ids of a cleaned text, without special tokens."""
        return self._encode(text).ids

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids of shape (N, context_length), padded on the right."""
        ids = torch.full((len(texts), self.context_length), self._pad_id,
                         dtype=torch.long)
        for i, text in enumerate(texts):
            encoding = self._encode(text)
            encoding.truncate(self.context_length - self.num_special,
                              direction=self.truncation_side)
            row = self._engine(f'to encode "{text}"',
                               self._tokenizer.post_process, encoding).ids
            ids[i, :len(row)] = torch.tensor(row)
        if self._sep_id is not None:
            ids[ids == self._sep_id] = 0
        return ids
