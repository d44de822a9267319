"""Hugging Face tokenizers from local files, and text prompts with them."""
import pytest
import torch

from mmpromptkd.models.clip import PromptedCLIP
from mmpromptkd.models.clip.class_prompts import tokenize_class_prompts
from mmpromptkd.models.clip.hf_tokenizer import (LocalHFTokenizer,
                                                 find_tokenizer_file)
from scaled_open_clip import scaled_model_cfg, small_timm_trunks
from small_hf_tokenizer import write_small_hf_tokenizer

# Ids of the small tokenizers, by hand: the specials first (padding,
# unknown, those before and after a text), then the words in order
# ('a', 'photo', 'of', 'the', 'x', 'X', '.', 'dog', ...).


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp('tokenizers')
    return {
        layout: write_small_hf_tokenizer(str(root / layout), layout)
        for layout in ('end', 'gemma', 'bert')
    }


def test_ids_layout_cleaning_truncation_and_padding(folders):
    # end: <pad> 0, <unk> 1, </s> 2, a 3, photo 4, of 5, ..., dog 10.
    end = LocalHFTokenizer(folders['end'] + '/tokenizer.json', 8,
                           clean='canonicalize')
    assert (end.start, end.num_special) == (0, 1)
    assert end(['A photo of a Dog.', 'zebra']).tolist() == [
        [3, 4, 5, 3, 10, 2, 0, 0], [1, 2, 0, 0, 0, 0, 0, 0]]
    assert end.encode('A photo, of') == [3, 4, 5]
    # gemma: <pad> 0, <unk> 1, <bos> 2, <eos> 3, a 4, photo 5, of 6, the 7,
    # x 8, X 9, . 10, dog 11; 'whitespace' cleaning keeps case and '.'.
    gemma = LocalHFTokenizer(folders['gemma'] + '/tokenizer.json', 8)
    assert (gemma.start, gemma.num_special) == (1, 2)
    assert gemma(['a photo of a dog.']).tolist() == [
        [2, 4, 5, 6, 4, 11, 10, 3]]
    short = LocalHFTokenizer(folders['gemma'] + '/tokenizer.json', 6)
    assert short(['a photo of a dog.']).tolist() == [[2, 4, 5, 6, 4, 3]]
    # bert: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3; the separator stripped.
    bert = LocalHFTokenizer(folders['bert'] + '/tokenizer.json', 5,
                            strip_sep_token=True)
    assert bert(['a dog']).tolist() == [[2, 4, 11, 0, 0]]


@pytest.mark.parametrize('layout', ['end', 'gemma', 'bert', 'xlm'])
def test_equals_open_clip_hf_tokenizer(layout, tmp_path):
    # open_clip's own HFTokenizer reads the folder through transformers.
    pytest.importorskip('transformers')
    from open_clip.tokenizer import HFTokenizer
    folder = write_small_hf_tokenizer(str(tmp_path), layout)
    texts = ['a photo of a red car.', 'X X X X dog.', 'zebra', '',
             'the good art of my bad star circle blue square green cat']
    for length in (6, 16):
        for strip in ((False, True) if layout == 'bert' else (False, )):
            ours = LocalHFTokenizer(folder + '/tokenizer.json', length,
                                    clean='canonicalize',
                                    strip_sep_token=strip)
            theirs = HFTokenizer(folder, context_length=length,
                                 clean='canonicalize', strip_sep_token=strip)
            assert torch.equal(ours(texts), theirs(texts)), (length, strip)


def test_bad_files_and_settings_name_what_is_wrong(folders, tmp_path):
    from mmpromptkd.models.clip.class_prompts import text_tokenizer
    bad = tmp_path / 'bad'
    bad.mkdir()
    (bad / 'tokenizer.json').write_text('{"not": "a tokenizer"')
    with pytest.raises(ValueError, match='not a Hugging Face tokenizer file'):
        LocalHFTokenizer(str(bad / 'tokenizer.json'), 8)
    config = tmp_path / 'config'
    write_small_hf_tokenizer(str(config))
    (config / 'tokenizer_config.json').write_text('[1, 2')
    with pytest.raises(ValueError, match='tokenizer_config.json: not a JSON'):
        LocalHFTokenizer(str(config / 'tokenizer.json'), 8)
    with pytest.raises(ValueError, match="clean must be one of"):
        text_tokenizer(dict(hf_tokenizer_name=folders['end'],
                            tokenizer_kwargs=dict(clean='upper')))
    with pytest.raises(ValueError, match="'language'"):
        text_tokenizer(dict(hf_tokenizer_name=folders['end'],
                            tokenizer_kwargs=dict(language='de')))


def test_nothing_is_downloaded(tmp_path):
    with pytest.raises(FileNotFoundError, match='has no tokenizer.json'):
        find_tokenizer_file(str(tmp_path))
    with pytest.raises(FileNotFoundError,
                       match=r'"timm/ViT-B-16-SigLIP2" is not in the local '
                       r'Hugging Face cache and nothing is downloaded'):
        find_tokenizer_file('timm/ViT-B-16-SigLIP2', cache_dir=str(tmp_path))


def siglip(folder, **kwargs):
    model_cfg = scaled_model_cfg('ViT-B-16-SigLIP')
    model_cfg['text_cfg']['hf_tokenizer_name'] = folder
    with small_timm_trunks():
        return PromptedCLIP(clip=dict(model_cfg=model_cfg), **kwargs)


# 'a photo dog' and 'a photo red car' (canonicalised: no '.'), by hand.
PROMPT_IDS = {
    'end': [[3, 4, 10, 2], [3, 4, 11, 12, 2]],
    'gemma': [[2, 4, 5, 11, 3], [2, 4, 5, 12, 13, 3]],
}


@pytest.mark.parametrize('layout', ['end', 'gemma'])
def test_text_prompts_take_the_prefix_place(folders, layout):
    """The context starts after the start token where there is one, at the
    front otherwise: initialised from the prefix's own embeddings, a
    prompted tower encodes exactly as the plain one does."""
    torch.manual_seed(0)
    plain = siglip(folders[layout], ctx_init='a photo')
    names = ['dog', 'red car']
    tokens = torch.zeros(2, 64, dtype=torch.long)
    for i, row in enumerate(PROMPT_IDS[layout]):
        tokens[i, :len(row)] = torch.tensor(row)
    start = 0 if layout == 'end' else 1
    assert plain.tokenizer.start == start
    with torch.no_grad():
        torch.testing.assert_close(plain.encode_text(names),
                                   plain.clip.encode_text(tokens))
    prompted = siglip(folders[layout], ctx_init='a photo',
                      text_prompt_depth=1, text_prompt_length=2)
    prompted.clip.load_state_dict(plain.clip.state_dict())
    prefix = tokens[0, start:start + 2]
    prompted.text_ctx.data = plain.clip.text.token_embedding(prefix).detach()
    with torch.no_grad():
        torch.testing.assert_close(prompted.encode_text(names),
                                   plain.encode_text(names))
    prompted.text_ctx.data.add_(1.0)
    prompted.encode_text(names).square().sum().backward()
    assert prompted.text_ctx.grad.abs().sum() > 0


def test_a_missing_tokenizer_stops_a_teacher_not_a_student():
    with pytest.raises(FileNotFoundError, match='nothing is downloaded'):
        siglip('no-such-org/no-such-tokenizer')
    student = siglip('no-such-org/no-such-tokenizer', text_tower=False)
    assert not student.has_text_tower


class MergingTokenizer:
    """Encodes the prefix as 2 tokens but puts other ids there in prompts
    (as a tokenizer that merges the prefix with a name would)."""
    context_length, start, num_special = 6, 1, 2

    def encode(self, text):
        return [5, 6] if text == 'a photo' else [5, 6, 7]

    def __call__(self, texts):
        return torch.tensor([[1, 5, 9, 2, 0, 0]] * len(texts))


def test_a_prefix_the_tokenizer_merges_is_refused():
    tokenize_class_prompts(MergingTokenizer(), 'a photo', ['dog'], 1)
    with pytest.raises(ValueError, match='does not keep the first 2 tokens '
                       'of the prompt prefix "a photo"'):
        tokenize_class_prompts(MergingTokenizer(), 'a photo', ['dog'], 2)


def test_an_open_vocabulary_export_names_no_tokenizer(folders, tmp_path,
                                                      tiny_clip_cfg):
    from mmpromptkd.apis import export_student
    from mmpromptkd.registry import MODELS
    model_cfg = scaled_model_cfg('ViT-B-16-SigLIP')
    model_cfg['text_cfg']['hf_tokenizer_name'] = folders['end']
    cfg = dict(type='PromptKDDistiller', student=dict(clip=tiny_clip_cfg),
               teacher=dict(clip=dict(model_cfg=model_cfg)))
    with small_timm_trunks():
        model = MODELS.build(cfg)
    model.prepare_text_features(['dog', 'red car'], for_training=True)
    with pytest.raises(ValueError, match='with_text_encoder: the teacher\'s '
                       'tokenizer is the Hugging Face tokenizer'):
        export_student(model, cfg, str(tmp_path / 'open.pth'),
                       with_text_encoder=True)
    assert not (tmp_path / 'open.pth').exists()
    export_student(model, cfg, str(tmp_path / 'student.pth'))
