"""Hugging Face tokenizer files whose own settings, or whose failures, must
not change what a prompt's tokens are: each either tokenises as open_clip's
``HFTokenizer`` does or is refused with an error naming the file."""
import json

import pytest
import torch
from tokenizers import Regex, Tokenizer, pre_tokenizers

from mmpromptkd.models.clip import PromptedCLIP
from mmpromptkd.models.clip.class_prompts import text_tokenizer
from mmpromptkd.models.clip.hf_tokenizer import LocalHFTokenizer
from scaled_open_clip import scaled_model_cfg, small_timm_trunks
from small_hf_tokenizer import write_small_hf_tokenizer

# gemma layout, by hand: <pad> 0, <unk> 1, <bos> 2, <eos> 3, a 4, photo 5,
# of 6, the 7, x 8, X 9, . 10, dog 11, red 12, car 13, ..., art 24.
LONG = 'a photo of a dog. the red car'
LONG_IDS = [4, 5, 6, 4, 11, 10, 7, 12, 13]


def crafted(folder, layout='gemma', edit=None, config=None, drop=()):
    """A small tokenizer whose ``tokenizer.json`` is changed by ``edit`` (a
    function of the ``tokenizers.Tokenizer``) and whose
    ``tokenizer_config.json`` gets ``config`` and loses the keys ``drop``.

    Returns:
        str: The path of its ``tokenizer.json``.
    """
    write_small_hf_tokenizer(str(folder), layout)
    path = str(folder / 'tokenizer.json')
    if edit is not None:
        tokenizer = Tokenizer.from_file(path)
        edit(tokenizer)
        tokenizer.save(path)
    settings = json.loads((folder / 'tokenizer_config.json').read_text())
    settings.update(config or {})
    for key in drop:
        settings.pop(key)
    (folder / 'tokenizer_config.json').write_text(json.dumps(settings))
    return path


def raw_ids(path, text):
    """The engine's own ids of ``text`` with the file's truncation and
    padding switched off: what the context length alone makes of it."""
    tokenizer = Tokenizer.from_file(path)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer.encode(text).ids


def padded(rows, length, pad_id):
    return [row + [pad_id] * (length - len(row)) for row in rows]


def test_file_truncation_to_3_tokens_keeps_every_prompt_whole(tmp_path):
    # Every fast-tokenizer file carries a truncation field; transformers
    # replaces its max_length by the context length.
    path = crafted(tmp_path, edit=lambda t: t.enable_truncation(3))
    texts = ['a photo of a dog.', 'a photo of a red car.']
    expected = padded([raw_ids(path, text) for text in texts], 10, 0)
    assert expected[0] == [2, 4, 5, 6, 4, 11, 10, 3, 0, 0]
    tokens = LocalHFTokenizer(path, 10)(texts)
    assert tokens.tolist() == expected
    assert LocalHFTokenizer(path, 10).encode('a photo of a') == [4, 5, 6, 4]
    # Longer than the context: cut to leave room for <bos> and <eos>.
    assert LocalHFTokenizer(path, 6)([LONG]).tolist() == [
        [2, *LONG_IDS[:4], 3]]


def test_file_padding_length_multiple_and_id_keeps_context_length(tmp_path):
    # Padding to 12, to a multiple of 4, with 'of' (id 6) as the file's
    # pad token: transformers pads to the context length with the pad
    # token tokenizer_config.json names (<pad>, id 0).
    path = crafted(tmp_path, edit=lambda t: t.enable_padding(
        length=12, pad_to_multiple_of=4, pad_id=6, pad_token='of'))
    tokens = LocalHFTokenizer(path, 9)(['a photo of a dog.', 'red car'])
    assert tokens.tolist() == padded(
        [raw_ids(path, 'a photo of a dog.'), [2, 12, 13, 3]], 9, 0)


def test_file_pad_token_where_the_config_names_none_works(tmp_path):
    # transformers takes the file's padding token ('of', id 6) when
    # tokenizer_config.json names none.
    path = crafted(tmp_path, drop=['pad_token'],
                   edit=lambda t: t.enable_padding(pad_id=6, pad_token='of'))
    assert LocalHFTokenizer(path, 6)(['red car']).tolist() == [
        [2, 12, 13, 3, 6, 6]]


@pytest.mark.parametrize('where', ['config', 'file'])
def test_left_truncation_side_keeps_the_end_of_a_long_text(tmp_path, where):
    if where == 'config':
        path = crafted(tmp_path, config=dict(truncation_side='left'))
    else:
        path = crafted(tmp_path, edit=lambda t: t.enable_truncation(
            3, direction='left'))
    tokens = LocalHFTokenizer(path, 6)([LONG, 'red car'])
    assert tokens.tolist() == [[2, *LONG_IDS[-4:], 3], [2, 12, 13, 3, 0, 0]]


def test_config_right_truncation_side_over_a_left_file_keeps_the_start(
        tmp_path):
    path = crafted(tmp_path, config=dict(truncation_side='right'),
                   edit=lambda t: t.enable_truncation(3, direction='left'))
    assert LocalHFTokenizer(path, 6)([LONG]).tolist() == [
        [2, *LONG_IDS[:4], 3]]


@pytest.mark.parametrize('where', ['config', 'file'])
def test_left_padding_side_is_refused_by_name(tmp_path, where):
    # A prompt's context would not start at the same place in every row.
    if where == 'config':
        path = crafted(tmp_path, config=dict(padding_side='left'))
    else:
        path = crafted(tmp_path,
                       edit=lambda t: t.enable_padding(direction='left'))
    with pytest.raises(ValueError, match=r'tokenizer\.json: padding side '
                       r"'left' \(.*\) is not supported; only 'right'"):
        LocalHFTokenizer(path, 6)


def test_a_config_side_that_is_no_side_is_refused_by_name(tmp_path):
    path = crafted(tmp_path, config=dict(truncation_side=1))
    with pytest.raises(ValueError, match=r"tokenizer_config\.json: "
                       r"truncation_side must be 'left' or 'right', got 1"):
        LocalHFTokenizer(path, 6)


def test_a_pad_token_missing_from_the_vocabulary_is_refused_by_name(
        tmp_path):
    # transformers would add it as a new token, one past the vocabulary.
    path = crafted(tmp_path, config=dict(pad_token='<nope>'))
    with pytest.raises(ValueError, match=r"tokenizer_config\.json: pad_token "
                       r"'<nope>' is not a token of .*tokenizer\.json"):
        LocalHFTokenizer(path, 6)


@pytest.mark.parametrize('value', [5, {'content': 5}, ['<pad>']])
def test_a_non_string_pad_token_is_refused_by_name(tmp_path, value):
    path = crafted(tmp_path, config=dict(pad_token=value))
    with pytest.raises(ValueError, match=r'tokenizer_config\.json: pad_token '
                       r'must be a string or a dict with a string "content"'):
        LocalHFTokenizer(path, 6)


@pytest.mark.parametrize('kwargs', [['clean'], 'lower',
                                    dict(strip_sep_token='no')])
def test_non_dict_tokenizer_kwargs_are_refused_by_name(tmp_path, kwargs):
    folder = write_small_hf_tokenizer(str(tmp_path), 'bert')
    with pytest.raises(ValueError, match=r'text_cfg\.tokenizer_kwargs'
                       r'(\.strip_sep_token)?: expected a (dict|bool)'):
        text_tokenizer(dict(hf_tokenizer_name=folder,
                            tokenizer_kwargs=kwargs))


def test_a_regex_panic_of_the_tokenizers_engine_is_an_error_naming_the_file(
        tmp_path):
    # Catastrophic backtracking: the engine panics (PanicException derives
    # from BaseException, not Exception).
    def split(tokenizer):
        tokenizer.pre_tokenizer = pre_tokenizers.Split(
            Regex('(a|aa)+(?=b)'), 'isolated')

    path = crafted(tmp_path, edit=split)
    tokenizer = LocalHFTokenizer(path, 6)
    with pytest.raises(ValueError, match=r'tokenizer\.json: the tokenizers '
                       r'library failed to encode "a{40}c" \(PanicException'):
        tokenizer(['a' * 40 + 'c'])
    with pytest.raises(ValueError, match='the tokenizers library failed'):
        tokenizer.encode('a' * 40 + 'c')

    class Interrupted:
        def encode(self, *args, **kwargs):
            raise KeyboardInterrupt

    tokenizer._tokenizer = Interrupted()
    with pytest.raises(KeyboardInterrupt):
        tokenizer(['a dog'])


def siglip(folder, vocab_size):
    model_cfg = scaled_model_cfg('ViT-B-16-SigLIP')
    model_cfg['text_cfg'].update(hf_tokenizer_name=folder,
                                 vocab_size=vocab_size)
    with small_timm_trunks():
        return PromptedCLIP(clip=dict(model_cfg=model_cfg))


def test_a_pad_id_beyond_the_text_tower_vocabulary_is_refused_at_build(
        tmp_path):
    # 'art' (id 24) pads; the token embedding has 20 rows.
    crafted(tmp_path, config=dict(pad_token='art'))
    with pytest.raises(ValueError, match=r'tokenizer\.json: the padding token '
                       r"'art' has id 24, beyond the text tower's vocabulary "
                       r'of 20 tokens'):
        siglip(str(tmp_path), 20)


def test_a_word_id_beyond_the_text_tower_vocabulary_is_refused_when_tokenising(
        tmp_path):
    # 'red car' is 12 13; the token embedding has 13 rows.
    crafted(tmp_path)
    model = siglip(str(tmp_path), 13)
    model.encode_text(['dog'])
    with pytest.raises(ValueError, match=r'tokenizer\.json: class name '
                       r'"red car" has token id 13, beyond the text tower\'s '
                       r'vocabulary of 13 tokens'):
        model.encode_text(['red car'])
    assert torch.isfinite(model.encode_text(['dog'])).all()


CRAFTED = {
    'truncation-to-3': dict(edit=lambda t: t.enable_truncation(3)),
    'left-truncation': dict(edit=lambda t: t.enable_truncation(
        3, direction='left')),
    'config-left-truncation': dict(config=dict(truncation_side='left')),
    'padding-to-12-with-of': dict(edit=lambda t: t.enable_padding(
        length=12, pad_to_multiple_of=4, pad_id=6, pad_token='of')),
    'file-pad-token-only': dict(drop=['pad_token'], edit=lambda t: t.
                                enable_padding(pad_id=6, pad_token='of')),
}


@pytest.mark.parametrize('setting', list(CRAFTED))
def test_crafted_file_settings_keep_open_clip_hf_tokenizer_ids(tmp_path,
                                                               setting):
    # open_clip's own HFTokenizer reads the folder through transformers.
    pytest.importorskip('transformers')
    from open_clip.tokenizer import HFTokenizer
    path = crafted(tmp_path, **CRAFTED[setting])
    texts = [LONG, 'red car', 'zebra', '']
    for length in (6, 12):
        theirs = HFTokenizer(str(tmp_path), context_length=length,
                             clean='canonicalize')
        ours = LocalHFTokenizer(path, length, clean='canonicalize')
        assert torch.equal(ours(texts), theirs(texts)), length


def test_a_ctx_init_id_beyond_the_text_tower_vocabulary_is_refused_at_build(
        tmp_path):
    # 'red' is 12; the token embedding has 12 rows.
    crafted(tmp_path)
    model_cfg = scaled_model_cfg('ViT-B-16-SigLIP')
    model_cfg['text_cfg'].update(hf_tokenizer_name=str(tmp_path),
                                 vocab_size=12)
    with small_timm_trunks(), pytest.raises(
            ValueError, match=r'tokenizer\.json: ctx_init "red car" has '
            r"token id 12, beyond the text tower's vocabulary of 12 tokens"):
        PromptedCLIP(clip=dict(model_cfg=model_cfg), ctx_init='red car',
                     text_prompt_depth=1, text_prompt_length=2)


def test_a_template_id_beyond_the_text_tower_vocabulary_is_refused(
        tmp_path):
    from mmpromptkd.registry import MODELS
    crafted(tmp_path)
    model_cfg = scaled_model_cfg('ViT-B-16-SigLIP')
    model_cfg['text_cfg'].update(hf_tokenizer_name=str(tmp_path),
                                 vocab_size=13)
    with small_timm_trunks():
        model = MODELS.build(dict(type='ZeroShotCLIPClassifier',
                                  clip=dict(model_cfg=model_cfg),
                                  template='a photo of a {}.'))
    with pytest.raises(ValueError, match=r'tokenizer\.json: prompt "a photo '
                       r'of a red car." has token id 13, beyond the text '
                       r"tower's vocabulary of 13 tokens"):
        model.encode_text(['dog', 'red car'])
