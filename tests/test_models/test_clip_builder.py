"""Weight sources of build_clip: OpenAI files, checkpoints, tags, configs."""
import open_clip
import pytest
import torch

import mmpromptkd  # noqa: F401
from mmpromptkd.models.clip import build_clip, infer_openai_clip_config
from mmpromptkd.models.clip.clip_builder import build_clip_and_architecture
from mmpromptkd.registry import MODELS

# OpenAI layout: heads of width 64.
OPENAI_TINY = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2),
    text_cfg=dict(
        context_length=77, vocab_size=49408, width=64, heads=1, layers=2))


def openai_reference():
    """A tiny CLIP as OpenAI would ship it: QuickGELU, fp16 weights."""
    model = open_clip.CLIP(**OPENAI_TINY, quick_gelu=True).eval()
    state = {k: v.half() for k, v in model.state_dict().items()}
    state['input_resolution'] = torch.tensor(32)
    state['context_length'] = torch.tensor(77)
    state['vocab_size'] = torch.tensor(49408)
    model.load_state_dict({
        k: v.float()
        for k, v in state.items() if k in model.state_dict()
    })
    return model, state


def save_torchscript(model, path):
    images = torch.randn(1, 3, 32, 32)
    tokens = open_clip.tokenize(['a dog'])
    traced = torch.jit.trace(model, (images, tokens), check_trace=False)
    torch.jit.save(traced, str(path))


def assert_same_features(model, reference):
    images = torch.randn(2, 3, 32, 32)
    tokens = open_clip.tokenize(['a photo of a cat.', 'a dog'])
    torch.testing.assert_close(
        model.encode_image(images),
        reference.encode_image(images),
        atol=1e-6,
        rtol=0)
    torch.testing.assert_close(
        model.encode_text(tokens),
        reference.encode_text(tokens),
        atol=1e-6,
        rtol=0)


def is_quick_gelu(model):
    act = model.visual.transformer.resblocks[0].mlp.gelu
    text_act = model.transformer.resblocks[0].mlp.gelu
    return all(
        isinstance(a, open_clip.transformer.QuickGELU)
        for a in (act, text_act))


class TestOpenAIFiles:

    def test_infer_config(self):
        _, state = openai_reference()
        cfg = infer_openai_clip_config(state)
        assert cfg['embed_dim'] == 32
        assert cfg['vision_cfg'] == dict(
            image_size=32,
            patch_size=8,
            width=64,
            layers=2,
            head_width=64,
            mlp_ratio=4.0)
        assert cfg['text_cfg'] == dict(
            context_length=77,
            vocab_size=49408,
            width=64,
            heads=1,
            layers=2,
            mlp_ratio=4.0)

    def test_plain_state_dict(self, tmp_path):
        reference, state = openai_reference()
        torch.save(state, tmp_path / 'ViT-T.pt')
        model = build_clip(dict(openai_file=str(tmp_path / 'ViT-T.pt')))
        assert is_quick_gelu(model)
        assert_same_features(model, reference)

    def test_architecture_rebuilds_without_the_file(self, tmp_path):
        """The architecture alone rebuilds the model (random weights), and
        open_clip's CLIP object is left as open_clip builds it."""
        reference, state = openai_reference()
        torch.save(state, tmp_path / 'ViT-T.pt')
        model, architecture = build_clip_and_architecture(
            dict(openai_file=str(tmp_path / 'ViT-T.pt')))
        assert architecture['quick_gelu'] and \
            architecture['precision'] == 'fp32'
        rebuilt = build_clip(architecture)
        assert {k: v.shape for k, v in rebuilt.state_dict().items()} == \
            {k: v.shape for k, v in model.state_dict().items()}
        plain = open_clip.CLIP(**architecture['model_cfg'], quick_gelu=True)
        assert set(vars(model)) == set(vars(plain))

    def test_torchscript_archive(self, tmp_path):
        reference, _ = openai_reference()
        save_torchscript(reference, tmp_path / 'ViT-T.pt')
        model = build_clip(dict(openai_file=str(tmp_path / 'ViT-T.pt')))
        assert is_quick_gelu(model)
        assert_same_features(model, reference)

    def test_prompted_clip_from_openai_file(self, tmp_path):
        reference, state = openai_reference()
        torch.save(state, tmp_path / 'ViT-T.pt')
        model = MODELS.build(
            dict(
                type='PromptedCLIP',
                clip=dict(openai_file=str(tmp_path / 'ViT-T.pt')),
                vision_prompt_depth=2,
                text_prompt_depth=2))
        assert model.embed_dim == 32
        assert model.image_size == (32, 32)

    @pytest.mark.slow
    def test_open_clip_checkpoint_by_name(self, tmp_path):
        # The smallest open_clip ViT config (43 M parameters).
        model = open_clip.create_model('ViT-S-32-alt')
        # Only the keys matter here; a wrong key set is rejected.
        bad = {
            k: v
            for k, v in model.state_dict().items() if 'ln_final' not in k
        }
        torch.save({'state_dict': bad}, tmp_path / 's32.pth')
        with pytest.raises(ValueError, match='missing keys.*ln_final'):
            build_clip(
                dict(
                    model_name='ViT-S-32-alt',
                    checkpoint=str(tmp_path / 's32.pth')))
        torch.save(
            {
                'state_dict': {
                    f'module.{k}': v
                    for k, v in model.state_dict().items()
                }
            }, tmp_path / 's32_ddp.pth')
        loaded = build_clip(
            dict(
                model_name='ViT-S-32-alt',
                checkpoint=str(tmp_path / 's32_ddp.pth')))
        torch.testing.assert_close(loaded.visual.proj, model.visual.proj)
        assert not is_quick_gelu(loaded)
        forced = build_clip(
            dict(
                model_name='ViT-S-32-alt',
                quick_gelu=True,
                checkpoint=str(tmp_path / 's32_ddp.pth')))
        assert is_quick_gelu(forced)


class TestPretrainedTags:

    def test_tag_missing_from_cache(self, tmp_path):
        with pytest.raises(
                FileNotFoundError, match='not in the local cache') as info:
            build_clip(
                dict(
                    model_name='ViT-B-16',
                    pretrained='openai',
                    cache_dir=str(tmp_path)))
        assert 'vit_base_patch16_clip_224.openai' in str(info.value)

    def test_unknown_tag(self):
        with pytest.raises(ValueError, match='unknown tag "nope"'):
            build_clip(dict(model_name='ViT-B-16', pretrained='nope'))

    def test_tag_found_in_hf_cache(self, tmp_path):
        from mmpromptkd.models.clip.clip_builder import \
            _cached_pretrained_file
        repo = tmp_path / 'models--timm--vit_base_patch16_clip_224.openai'
        (repo / 'refs').mkdir(parents=True)
        (repo / 'refs' / 'main').write_text('abc123')
        snap = repo / 'snapshots' / 'abc123'
        snap.mkdir(parents=True)
        (snap / 'open_clip_model.safetensors').write_bytes(b'x')
        found = _cached_pretrained_file('ViT-B-16', 'openai', str(tmp_path))
        assert found.endswith('open_clip_model.safetensors')


class TestBadSources:

    def test_unknown_model_name(self):
        with pytest.raises(
                ValueError, match='unknown open_clip model "ViT-Q"'):
            build_clip(dict(model_name='ViT-Q', checkpoint='x.pth'))

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match='clip.openai_file'):
            build_clip(dict(openai_file=str(tmp_path / 'none.pt')))

    def test_ambiguous_source(self, tiny_clip_cfg):
        with pytest.raises(ValueError, match='exactly one of'):
            build_clip(dict(tiny_clip_cfg, openai_file='x.pt'))
        with pytest.raises(ValueError, match='unexpected keys'):
            build_clip(dict(tiny_clip_cfg, pretrained='openai'))
        with pytest.raises(ValueError, match='clip.precision'):
            build_clip(dict(tiny_clip_cfg, precision='fp8'))

    def test_wrong_shapes(self, tmp_path):
        _, state = openai_reference()
        model_cfg = dict(OPENAI_TINY, embed_dim=16)
        torch.save(state, tmp_path / 'w.pt')
        with pytest.raises(
                ValueError, match=r'shape mismatch \[.text_projection'):
            build_clip(
                dict(model_cfg=model_cfg, checkpoint=str(tmp_path / 'w.pt')))

    def test_resnet_weights_rejected(self, tmp_path):
        torch.save({'visual.layer1.0.conv1.weight': torch.zeros(1)},
                   tmp_path / 'rn.pt')
        with pytest.raises(ValueError, match='ResNet CLIP'):
            build_clip(dict(openai_file=str(tmp_path / 'rn.pt')))

    def test_torchscript_where_prompt_checkpoint_expected(
            self, tmp_path, tiny_clip_cfg):
        reference, _ = openai_reference()
        save_torchscript(reference, tmp_path / 'ts.pt')
        with pytest.raises(ValueError, match='TorchScript'):
            MODELS.build(
                dict(
                    type='PromptedCLIP',
                    clip=tiny_clip_cfg,
                    vision_prompt_depth=1,
                    checkpoint=str(tmp_path / 'ts.pt')))


def test_clip_data_preprocessor_matches_open_clip_normalisation():
    """0-255 images through our preprocessor = open_clip's Normalize(x/255)."""
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    from open_clip.transform import image_transform

    from mmpromptkd.models.clip.data_preprocessor import \
        CLIP_DATA_PREPROCESSOR
    pixels = torch.randint(
        0,
        256, (2, 3, 8, 8),
        dtype=torch.uint8,
        generator=torch.Generator().manual_seed(0))
    cfg = dict(CLIP_DATA_PREPROCESSOR, to_rgb=False)  # already RGB here
    ours = PRETRAIN_MODELS.build(cfg)(dict(inputs=list(pixels)))['inputs']
    normalize = image_transform(8, is_train=False).transforms[-1]
    theirs = normalize(pixels.float() / 255)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
