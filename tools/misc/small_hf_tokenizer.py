"""Small word-level Hugging Face tokenizer files, for tests that run offline;
ids are the special tokens of a layout, then the words in order."""
import json
import os.path as osp
from pathlib import Path
from typing import Dict, Sequence

from mmpromptkd.fileio import atomic_write

#: Special tokens of each layout: padding, what goes before and after a
#: text, and unknown words.
LAYOUTS: Dict[str, dict] = {
    'end': dict(pad='<pad>', before=(), after=('</s>', ), unk='<unk>'),
    'gemma': dict(pad='<pad>', before=('<bos>', ), after=('<eos>', ),
                  unk='<unk>'),
    'bert': dict(pad='[PAD]', before=('[CLS]', ), after=('[SEP]', ),
                 unk='[UNK]'),
    'xlm': dict(pad='<pad>', before=('<s>', ), after=('</s>', ),
                unk='<unk>'),
}

#: Words the tests' prompts and class names use.
WORDS = ('a', 'photo', 'of', 'the', 'x', 'X', '.', 'dog', 'red', 'car',
         'cat', 'circle', 'blue', 'square', 'green', 'star', 'itap', 'my',
         'bad', 'good', 'art')


def layout_of(hub_name: str) -> str:
    """The key of :data:`LAYOUTS` closest to the tokenizer ``hub_name``."""
    if hub_name.startswith('bert'):
        return 'bert'
    if hub_name.startswith('facebook/'):
        return 'xlm'
    return 'gemma' if 'SigLIP2' in hub_name else 'end'


def write_small_hf_tokenizer(folder: str, layout: str = 'end',
                             words: Sequence[str] = WORDS) -> str:
    """Write a word-level tokenizer into ``folder`` (never over others'
    files); ``folder``, for ``text_cfg.hf_tokenizer_name``.

    Args:
        folder (str): Where ``tokenizer.json`` and its config go.
        layout (str): A key of :data:`LAYOUTS`.
        words (Sequence[str]): The vocabulary after the special tokens.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    spec = LAYOUTS[layout]
    specials = [spec['pad'], spec['unk'], *spec['before'], *spec['after']]
    vocab = {token: i for i, token in enumerate([*specials, *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=spec['unk']))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(specials)
    template = ' '.join([*spec['before'], '$A', *spec['after']])
    tokenizer.post_processor = processors.TemplateProcessing(
        single=template,
        special_tokens=[(t, vocab[t])
                        for t in (*spec['before'], *spec['after'])])
    config = dict(pad_token=spec['pad'], unk_token=spec['unk'])
    if layout == 'bert':
        # What strip_sep_token (CLIPA) replaces.
        config.update(cls_token=spec['before'][0], sep_token=spec['after'][0])
    files = {
        'tokenizer.json': tokenizer.to_str(pretty=True),
        'tokenizer_config.json': json.dumps(config),
    }
    for name, text in files.items():  # all checked before any is written
        path = osp.join(folder, name)
        if osp.lexists(path) and not (osp.isfile(path) and Path(
                path).read_bytes() == text.encode('utf-8')):
            raise FileExistsError(f'{path} exists and is not this '
                                  "tokenizer's file; refusing to replace it "
                                  '(give an empty or new folder)')
    for name, text in files.items():
        path = osp.join(folder, name)
        if not osp.lexists(path):
            atomic_write(text, path, exclusive=True)
    return folder
