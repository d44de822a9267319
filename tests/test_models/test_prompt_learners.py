"""Stage-(a) teachers: PromptSRC, IVLP, MaPLe, zero-shot CLIP, configs."""
import glob
import math
import os.path as osp
from types import SimpleNamespace

import open_clip
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmpretrain.structures import DataSample

import mmpromptkd  # noqa: F401
from lr_schedules import dassl_lrs, scheduled_lrs
from mmpromptkd.models.clip.templates import (DATASET_TEMPLATES,
                                              IMAGENET_TEMPLATES,
                                              get_dataset_template)
from mmpromptkd.registry import HOOKS, MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NAMES = ['dog', 'sea_lion', 'red car']
ALL_NAMES = NAMES + ['cat', 'blue whale']
# PromptSRC's 60 ImageNet templates, in its order (trainers/promptsrc.py).
PROMPTSRC_IMAGENET_TEMPLATES = (
    'a photo of a {}.',
    'a bad photo of a {}.',
    'a photo of many {}.',
    'a sculpture of a {}.',
    'a photo of the hard to see {}.',
    'a low resolution photo of the {}.',
    'a rendering of a {}.',
    'graffiti of a {}.',
    'a bad photo of the {}.',
    'a cropped photo of the {}.',
    'a tattoo of a {}.',
    'the embroidered {}.',
    'a photo of a hard to see {}.',
    'a bright photo of a {}.',
    'a photo of a clean {}.',
    'a photo of a dirty {}.',
    'a dark photo of the {}.',
    'a drawing of a {}.',
    'a photo of my {}.',
    'the plastic {}.',
    'a photo of the cool {}.',
    'a close-up photo of a {}.',
    'a black and white photo of the {}.',
    'a painting of the {}.',
    'a painting of a {}.',
    'a pixelated photo of the {}.',
    'a sculpture of the {}.',
    'a bright photo of the {}.',
    'a cropped photo of a {}.',
    'a plastic {}.',
    'a photo of the dirty {}.',
    'a jpeg corrupted photo of a {}.',
    'a blurry photo of the {}.',
    'a photo of the {}.',
    'a good photo of the {}.',
    'a rendering of the {}.',
    'a {} in a video game.',
    'a photo of one {}.',
    'a doodle of a {}.',
    'a close-up photo of the {}.',
    'the origami {}.',
    'the {} in a video game.',
    'a sketch of a {}.',
    'a doodle of the {}.',
    'a origami {}.',
    'a low resolution photo of a {}.',
    'the toy {}.',
    'a rendition of the {}.',
    'a photo of the clean {}.',
    'a photo of a large {}.',
    'a rendition of a {}.',
    'a photo of a nice {}.',
    'a photo of a weird {}.',
    'a blurry photo of a {}.',
    'a cartoon {}.',
    'art of a {}.',
    'a sketch of the {}.',
    'a embroidered {}.',
    'a pixelated photo of a {}.',
    'itap of the {}.',
)


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    """Tiny models: with the few cores shared, more threads only contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(cfg_type, clip_cfg, **kwargs):
    return MODELS.build(dict(type=cfg_type, clip=clip_cfg, **kwargs))


def samples(labels):
    return [DataSample().set_gt_label(label) for label in labels]


def reference_text(model, template, names):
    """Frozen open_clip text features of a template (no mmpromptkd code)."""
    texts = [template.replace('{}', n.replace('_', ' ')) for n in names]
    return model.clip.encode_text(open_clip.tokenize(texts)).float()


@pytest.fixture
def promptsrc(tiny_clip_cfg):
    model = build(
        'PromptSRCClassifier',
        tiny_clip_cfg,
        vision_prompt_depth=2,
        vision_prompt_length=2,
        text_prompt_depth=2,
        text_prompt_length=4)
    # Trained-looking prompts, so that prompted and frozen features differ.
    with torch.no_grad():
        for param in model.trainable_parameters().values():
            param.add_(torch.randn_like(param) * 0.3)
    return model


class TestTemplates:

    def test_imagenet_templates(self):
        # Derived from open_clip's list; exactly PromptSRC's, in its order.
        assert IMAGENET_TEMPLATES == PROMPTSRC_IMAGENET_TEMPLATES
        assert len(IMAGENET_TEMPLATES) == 60
        assert len(set(IMAGENET_TEMPLATES)) == 60
        assert IMAGENET_TEMPLATES[0] == 'a photo of a {}.'
        assert all(t.count('{}') == 1 for t in IMAGENET_TEMPLATES)

    def test_dataset_templates(self):
        assert DATASET_TEMPLATES['CoOpOxfordPets'] == \
            'a photo of a {}, a type of pet.'
        assert DATASET_TEMPLATES['CoOpDTD'] == '{} texture.'
        assert DATASET_TEMPLATES['CoOpEuroSAT'] == \
            'a centered satellite photo of {}.'
        assert DATASET_TEMPLATES[
            'CoOpFood101'] == 'a photo of {}, a type of food.'
        assert DATASET_TEMPLATES[
            'CoOpUCF101'] == 'a photo of a person doing {}.'
        for name in ('CoOpStanfordCars', 'CoOpSUN397', 'CoOpCaltech101',
                     'CoOpImageNet'):
            assert DATASET_TEMPLATES[name] == 'a photo of a {}.'
        import mmpromptkd.datasets as datasets
        for name in DATASET_TEMPLATES:
            assert hasattr(datasets, name), name
        with pytest.raises(KeyError, match='known'):
            get_dataset_template('MNIST')


class TestPromptSRC:

    def test_regularisers_hand_computed(self, promptsrc, monkeypatch):
        """Every term against numbers worked out by hand (s = log 2)."""
        model = promptsrc
        t_p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        t_0 = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
        v_p = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
        v_0 = torch.tensor([[0.8, 0.6], [0.6, 0.8]])
        model.prepare_text_features(['a', 'b'], for_training=True)
        model.zero_shot_text_features = t_0
        monkeypatch.setattr(model, 'encode_text', lambda n, normalize: t_p)
        monkeypatch.setattr(model, 'encode_image', lambda x, normalize: v_p)
        monkeypatch.setattr(model, 'zero_shot_image_features', lambda x: v_0)
        model.clip.logit_scale.data.fill_(math.log(2.0))

        losses = model(torch.zeros(2, 3, 32, 32), samples([0, 1]), 'loss')

        # L1 means: |t_p - t_0| = (0.4, 0.8, 0, 0) / 4 = 0.3
        #           |v_p - v_0| = (0.2, 0.6, 0, 0) / 4 = 0.2
        assert losses['loss_text'].item() == pytest.approx(25 * 0.3)
        assert losses['loss_image'].item() == pytest.approx(10 * 0.2)
        # z = 2 v_p t_p^T = [[2, 0], [1.2, 1.6]], labels (0, 1).
        ce = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-0.4))) / 2
        assert losses['loss_ce'].item() == pytest.approx(ce, rel=1e-6)
        # z0 = 2 v_0 t_0^T = [[1.92, 1.2], [2.0, 1.6]].
        z = [[2.0, 0.0], [1.2, 1.6]]
        z0 = [[1.92, 1.2], [2.0, 1.6]]
        kl = 0.0
        for row, row0 in zip(z, z0):
            p = [math.exp(v) / sum(map(math.exp, row)) for v in row]
            p0 = [math.exp(v) / sum(map(math.exp, row0)) for v in row0]
            kl += sum(a * (math.log(a) - math.log(b)) for a, b in zip(p0, p))
        assert losses['loss_logits'].item() == pytest.approx(kl / 4, rel=1e-5)
        assert set(losses) == {
            'loss_ce', 'loss_text', 'loss_image', 'loss_logits'
        }

    def test_frozen_text_features_against_open_clip(self, promptsrc):
        model = promptsrc
        model.prepare_text_features(NAMES, for_training=True)
        texts = [
            t.replace('{}', n.replace('_', ' ')) for t in IMAGENET_TEMPLATES
            for n in NAMES
        ]
        with torch.no_grad():
            raw = model.clip.encode_text(open_clip.tokenize(texts)).view(
                60, len(NAMES), -1)
        expected = F.normalize(F.normalize(raw, dim=-1).mean(0), dim=-1)
        torch.testing.assert_close(
            model.zero_shot_text_features, expected, atol=1e-5, rtol=0)
        # The reference averages unnormalised features: an option.
        model.normalize_template_features = False
        torch.testing.assert_close(
            model.compute_zero_shot_text_features(NAMES),
            F.normalize(raw.mean(0), dim=-1),
            atol=1e-5,
            rtol=0)

    def test_frozen_text_features_computed_once(self, promptsrc, monkeypatch):
        model = promptsrc
        calls = []
        original = model.compute_zero_shot_text_features
        monkeypatch.setattr(model, 'compute_zero_shot_text_features',
                            lambda n: calls.append(n) or original(n))
        model.prepare_text_features(NAMES, for_training=True)
        images, data = torch.randn(2, 3, 32, 32), samples([0, 2])
        model(images, data, 'loss')
        model(images, data, 'loss')
        model.prepare_text_features(NAMES, for_training=True)  # a resume
        model.prepare_text_features(ALL_NAMES, for_training=False)
        assert calls == [tuple(NAMES)]
        model.prepare_text_features(NAMES[:2], for_training=True)
        assert len(calls) == 2
        assert model.zero_shot_text_features.shape == (2, model.embed_dim)
        # A buffer that follows the model but is not saved.
        assert 'zero_shot_text_features' in dict(model.named_buffers())
        assert not any('zero_shot' in k for k in model.state_dict())

    def test_loss_of_the_real_model(self, promptsrc):
        model = promptsrc
        model.prepare_text_features(NAMES, for_training=True)
        images = torch.randn(3, 3, 32, 32)
        labels = torch.tensor([2, 0, 1])
        losses = model(images, samples(labels.tolist()), 'loss')

        pc = model.prompted_clip
        with torch.no_grad():
            t_p = F.normalize(pc.encode_text(NAMES), dim=-1)
            v_p = F.normalize(pc.encode_image(images), dim=-1)
            v_0 = F.normalize(model.clip.encode_image(images), dim=-1)
            t_0 = model.zero_shot_text_features
            scale = model.clip.logit_scale.exp()
            z, z0 = scale * v_p @ t_p.t(), scale * v_0 @ t_0.t()
            p0 = z0.softmax(-1)
            kl = (p0 * (p0.log() - z.log_softmax(-1))).sum() / z.numel()
        expected = dict(
            loss_ce=F.cross_entropy(z, labels),
            loss_text=25 * (t_p - t_0).abs().mean(),
            loss_image=10 * (v_p - v_0).abs().mean(),
            loss_logits=kl)
        for key, value in expected.items():
            torch.testing.assert_close(
                losses[key].detach(), value, atol=1e-5, rtol=1e-4)
        assert losses['loss_text'] > 0 and losses['loss_image'] > 0

        sum(losses.values()).backward()
        trainable = model.trainable_parameters()
        assert set(trainable) == {
            'prompted_clip.vision_ctx', 'prompted_clip.vision_deep_prompts.0',
            'prompted_clip.text_ctx', 'prompted_clip.text_deep_prompts.0'
        }
        assert all(p.grad is not None and p.grad.abs().sum() > 0
                   for p in trainable.values())
        assert all(p.grad is None for n, p in model.named_parameters()
                   if n not in trainable)

    def test_bad_templates(self, tiny_clip_cfg):
        with pytest.raises(ValueError, match='exactly one'):
            build(
                'PromptSRCClassifier',
                tiny_clip_cfg,
                vision_prompt_depth=1,
                text_prompt_depth=1,
                templates=['a photo.'])


class TestBaseBehaviour:

    def test_ivlp_is_cross_entropy_only(self, tiny_clip_cfg):
        model = build(
            'IVLPClassifier',
            tiny_clip_cfg,
            vision_prompt_depth=2,
            text_prompt_depth=3)
        model.prepare_text_features(NAMES, for_training=True)
        images, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
        losses = model(images, samples(labels.tolist()), 'loss')
        assert set(losses) == {'loss_ce'}
        with torch.no_grad():
            text = F.normalize(model.prompted_clip.encode_text(NAMES), dim=-1)
            image = F.normalize(
                model.prompted_clip.encode_image(images), dim=-1)
            logits = model.clip.logit_scale.exp() * image @ text.t()
        torch.testing.assert_close(losses['loss_ce'].detach(),
                                   F.cross_entropy(logits, labels))

    def test_predict_over_all_classes(self, tiny_clip_cfg):
        model = build(
            'IVLPClassifier',
            tiny_clip_cfg,
            vision_prompt_depth=1,
            text_prompt_depth=1)
        model.prepare_text_features(NAMES, for_training=True)
        # The hook passes ImageNet indices for ImageNet variants: ignored.
        model.prepare_text_features(
            ALL_NAMES, for_training=False, class_indices=range(5))
        model.eval()
        images = torch.randn(3, 3, 32, 32)
        out = model(images, samples([0, 3, 4]), 'predict')
        with torch.no_grad():
            expected = model(images, mode='tensor').softmax(-1)
        assert len(out) == 3 and out[1].gt_label.item() == 3
        for sample, score in zip(out, expected):
            assert sample.pred_score.shape == (5, )
            torch.testing.assert_close(sample.pred_score, score)
            assert sample.pred_label.item() == score.argmax().item()

    def test_extract_feat_is_the_prompted_image_feature(self, tiny_clip_cfg):
        model = build(
            'IVLPClassifier',
            tiny_clip_cfg,
            vision_prompt_depth=1,
            text_prompt_depth=1).eval()
        images = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            expected = F.normalize(
                model.prompted_clip.encode_image(images), dim=-1)
            torch.testing.assert_close(model.extract_feat(images), expected)

    def test_checkpoint_holds_prompts_not_clip(self, tiny_clip_cfg):
        model = build(
            'IVLPClassifier',
            tiny_clip_cfg,
            vision_prompt_depth=1,
            text_prompt_depth=1)
        assert sorted(model.state_dict()) == [
            'prompted_clip.text_ctx', 'prompted_clip.vision_ctx'
        ]
        full = build(
            'IVLPClassifier',
            tiny_clip_cfg,
            vision_prompt_depth=1,
            text_prompt_depth=1,
            save_clip_weights=True)
        assert 'prompted_clip.clip.visual.proj' in full.state_dict()

    def test_load_state_dict_is_strict_on_prompts(self, tiny_clip_cfg):
        model = build(
            'IVLPClassifier',
            tiny_clip_cfg,
            vision_prompt_depth=2,
            text_prompt_depth=2)
        state = model.state_dict()
        other = build(
            'IVLPClassifier',
            tiny_clip_cfg,
            vision_prompt_depth=2,
            text_prompt_depth=2)
        other.load_state_dict(state)  # frozen CLIP keys may be absent
        torch.testing.assert_close(other.prompted_clip.text_ctx,
                                   model.prompted_clip.text_ctx)
        missing = {k: v for k, v in state.items() if 'text_ctx' not in k}
        with pytest.raises(ValueError, match=r'missing keys \[.*text_ctx'):
            other.load_state_dict(missing, strict=False)
        extra = dict(state, **{'head.weight': torch.zeros(1)})
        with pytest.raises(ValueError, match=r'unexpected keys \[.*head'):
            other.load_state_dict(extra, strict=False)
        deeper = build(
            'IVLPClassifier',
            tiny_clip_cfg,
            vision_prompt_depth=2,
            text_prompt_depth=2,
            text_prompt_length=3)
        with pytest.raises(ValueError, match='shape mismatch'):
            deeper.load_state_dict(state, strict=False)

    def test_bad_labels_and_unprepared(self, tiny_clip_cfg):
        model = build(
            'IVLPClassifier',
            tiny_clip_cfg,
            vision_prompt_depth=1,
            text_prompt_depth=1)
        images = torch.randn(2, 3, 32, 32)
        with pytest.raises(RuntimeError, match='PromptKDTextFeaturesHook'):
            model(images, samples([0, 1]), 'loss')
        with pytest.raises(RuntimeError, match='PromptKDTextFeaturesHook'):
            model(images, mode='predict')
        model.prepare_text_features(NAMES, for_training=True)
        with pytest.raises(ValueError, match='3 training classes'):
            model(images, samples([0, 3]), 'loss')
        with pytest.raises(ValueError, match='train_subset'):
            build('IVLPClassifier', tiny_clip_cfg, train_subset='novel')


class TestMaPLe:

    @pytest.fixture
    def maple(self, tiny_clip_cfg):
        return build(
            'MaPLeClassifier', tiny_clip_cfg, prompt_depth=3, prompt_length=2)

    def test_coupling_shapes(self, maple):
        pc = maple.prompted_clip
        text_width = pc.clip.ln_final.weight.shape[0]
        vision_width = pc.clip.visual.conv1.out_channels
        assert len(maple.vision_prompt_maps) == 3
        for linear in maple.vision_prompt_maps:
            assert (linear.in_features, linear.out_features) == \
                (text_width, vision_width)
        assert [tuple(p.shape) for p in maple.text_prompts()] == \
            [(2, text_width)] * 3
        assert [tuple(p.shape) for p in maple.vision_prompts()] == \
            [(2, vision_width)] * 3
        # No independent vision prompts are left.
        assert set(maple.trainable_parameters()) == {
            'prompted_clip.text_ctx', 'prompted_clip.text_deep_prompts.0',
            'prompted_clip.text_deep_prompts.1'
        } | {
            f'vision_prompt_maps.{i}.{w}'
            for i in range(3)
            for w in ('weight', 'bias')
        }
        # Text context initialised from "a photo" (2 tokens of ctx_init).
        ids = torch.tensor(pc.tokenizer.encode('a photo of a')[:2])
        torch.testing.assert_close(pc.text_ctx.data,
                                   pc.clip.token_embedding(ids))
        images = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            expected = pc.encode_image(
                images,
                prompts=[
                    m(p) for m, p in zip(maple.vision_prompt_maps,
                                         pc.own_prompts('text'))
                ])
            torch.testing.assert_close(maple.encode_image(images), expected)

    def test_gradients_reach_text_prompts_and_maps(self, maple):
        maple.prepare_text_features(NAMES, for_training=True)
        losses = maple(
            torch.randn(4, 3, 32, 32), samples([0, 1, 2, 1]), 'loss')
        assert set(losses) == {'loss_ce'}
        losses['loss_ce'].backward()
        for name, param in maple.trainable_parameters().items():
            assert param.grad is not None and param.grad.abs().sum() > 0, \
                name
        # The deep text prompts get gradient through both towers.
        maple.zero_grad()
        maple.encode_image(torch.randn(2, 3, 32, 32)).sum().backward()
        assert maple.prompted_clip.text_deep_prompts[1].grad.abs().sum() > 0

    def test_bad_depth(self, tiny_clip_cfg):
        with pytest.raises(ValueError, match=r'prompt_depth=4 is larger'):
            build('MaPLeClassifier', tiny_clip_cfg, prompt_depth=4)
        with pytest.raises(ValueError, match='>= 1'):
            build('MaPLeClassifier', tiny_clip_cfg, prompt_depth=0)
        with pytest.raises(TypeError, match='prompt_depth and'):
            build('MaPLeClassifier', tiny_clip_cfg, vision_prompt_depth=2)


class TestZeroShotCLIP:

    def test_equals_plain_clip(self, tiny_clip_cfg):
        model = build('ZeroShotCLIPClassifier', tiny_clip_cfg)
        with torch.no_grad():
            torch.testing.assert_close(
                model.encode_text(NAMES),
                reference_text(model, 'a photo of a {}.', NAMES),
                atol=1e-6,
                rtol=0)
            prompted = MODELS.build(
                dict(type='PromptedCLIP', clip=tiny_clip_cfg))
            prompted.clip.load_state_dict(model.clip.state_dict())
            torch.testing.assert_close(
                model.encode_text(NAMES, normalize=True),
                prompted.encode_text(NAMES, normalize=True),
                atol=1e-6,
                rtol=0)
            dtd = build(
                'ZeroShotCLIPClassifier',
                tiny_clip_cfg,
                template='{} texture.')
            dtd.clip.load_state_dict(model.clip.state_dict())
            torch.testing.assert_close(
                dtd.encode_text(NAMES),
                reference_text(model, '{} texture.', NAMES),
                atol=1e-6,
                rtol=0)
        assert model.state_dict() == {}
        assert model.trainable_parameters() == {}

    def test_predicts_but_does_not_train(self, tiny_clip_cfg):
        model = build('ZeroShotCLIPClassifier', tiny_clip_cfg)
        model.prepare_text_features(ALL_NAMES, for_training=False)
        out = model(torch.randn(2, 3, 32, 32), mode='predict')
        assert out[0].pred_score.shape == (5, )
        with pytest.raises(RuntimeError, match='nothing to train'):
            model(torch.randn(2, 3, 32, 32), samples([0, 1]), 'loss')
        with pytest.raises(TypeError, match='unexpected arguments'):
            build('ZeroShotCLIPClassifier', tiny_clip_cfg, text_prompt_depth=2)
        with pytest.raises(ValueError, match='exactly one'):
            build('ZeroShotCLIPClassifier', tiny_clip_cfg, template='a {} {}')


class TestTrainSubsetCheckHook:

    @staticmethod
    def run_hook(model, metainfo):
        dataset = type('CoOpDTD', (), {'metainfo': metainfo})()
        runner = SimpleNamespace(
            model=model, train_dataloader=SimpleNamespace(dataset=dataset))
        HOOKS.build(dict(type='TrainSubsetCheckHook')).before_train(runner)

    def test_subsets(self, tiny_clip_cfg):
        b2n = build(
            'IVLPClassifier',
            tiny_clip_cfg,
            vision_prompt_depth=1,
            text_prompt_depth=1)
        base = dict(classes=('a', 'b'), num_base_classes=2, subset='base')
        everything = dict(
            classes=('a', 'b', 'c'), num_base_classes=2, subset='all')
        self.run_hook(b2n, base)
        with pytest.raises(
                ValueError, match=r"DTD is the 'all' subset .*subset='base'"):
            self.run_hook(b2n, everything)
        with pytest.raises(ValueError, match='does not say'):
            self.run_hook(b2n, dict(classes=('a', 'b')))
        all_class = build(
            'IVLPClassifier',
            tiny_clip_cfg,
            vision_prompt_depth=1,
            text_prompt_depth=1,
            train_subset='all')
        self.run_hook(all_class, everything)
        with pytest.raises(ValueError, match="train_subset='all'"):
            self.run_hook(all_class, base)
        unchecked = build(
            'IVLPClassifier',
            tiny_clip_cfg,
            vision_prompt_depth=1,
            text_prompt_depth=1,
            train_subset=None)
        self.run_hook(unchecked, dict(classes=('a', )))
        with pytest.raises(TypeError, match='teacher classifier'):
            self.run_hook(torch.nn.Linear(1, 1), base)


# ---------------------------------------------------------------------- #
# Configs: they parse and hold the reference hyper-parameters.
ALGOS = ('promptsrc', 'maple', 'ivlp', 'zsclip')
CONFIGS = sorted(
    p for algo in ALGOS
    for p in glob.glob(osp.join(ROOT, 'configs', algo, '*.py')))
DATASETS = ('caltech101', 'dtd', 'eurosat', 'fgvc-aircraft', 'food101',
            'imagenet', 'oxford-flowers', 'oxford-pets', 'stanford-cars',
            'sun397', 'ucf101')


def test_every_dataset_has_every_teacher():
    names = {osp.basename(p) for p in CONFIGS}
    for ds in DATASETS:
        for name in (f'promptsrc_vit-l14_1xb8-16shot-20e_b2n-{ds}.py',
                     f'promptsrc_vit-b16_1xb4-16shot-20e_b2n-{ds}.py',
                     f'maple_vit-l14_1xb8-16shot-20e_b2n-{ds}.py',
                     f'ivlp_vit-l14_1xb8-16shot-20e_b2n-{ds}.py',
                     f'zsclip_vit-l14_b2n-{ds}.py'):
            assert name in names
    assert 'promptsrc_vit-l14_1xb8-16shot-20e_xd-imagenet.py' in names
    for algo in ALGOS:
        with open(osp.join(ROOT, 'configs', algo, 'README.md')) as f:
            readme = f.read()
        for path in CONFIGS:
            if f'/{algo}/' in path:
                assert osp.basename(path)[:-3] in readme, path


#: The stage-(a) configs of other CLIP families, by the model in their name.
OTHER_FAMILIES = {
    'eva02-l14': dict(model_name='EVA02-L-14',
                      pretrained='merged2b_s4b_b131k'),
    'pe-core-l14-336': dict(model_name='PE-Core-L-14-336', pretrained='meta'),
    'vit-l16-siglip2-256': dict(model_name='ViT-L-16-SigLIP2-256',
                                pretrained='webli'),
}


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config(path):
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    model = cfg.model
    assert cfg.default_scope == 'mmpromptkd'
    hooks = [h.type for h in cfg.custom_hooks]
    # custom_hooks replace the runtime's list: keep all of its hooks.
    runtime = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/default_runtime.py')).custom_hooks
    assert {h.type for h in runtime} <= set(hooks)
    assert cfg.test_dataloader.dataset.subset == 'all'
    assert cfg.test_evaluator.type == 'BaseNovelAccuracy'
    if name.startswith('zsclip'):
        assert model.type == 'ZeroShotCLIPClassifier'
        assert model.template == 'a photo of a {}.'
        return
    assert hooks[0] == 'TrainSubsetCheckHook'
    # Dassl's constant warm-up epoch, then its restarted cosine.
    lr = cfg.optim_wrapper.optimizer.lr
    epochs = cfg.train_cfg.max_epochs
    expected = dassl_lrs(lr, epochs)
    assert scheduled_lrs(cfg) == pytest.approx(expected, rel=1e-9, abs=1e-15)
    train = cfg.train_dataloader
    xd = '_xd-' in name
    assert train.dataset.subset == ('all' if xd else 'base')
    assert model.train_subset == train.dataset.subset
    if name.startswith('promptsrc'):
        assert model.type == 'PromptSRCClassifier'
        assert (model.text_loss_weight, model.image_loss_weight) == (25, 10)
        assert model.logit_loss == dict(
            type='KLLogitLoss', loss_weight=1.0, reduction='mean')
        gpa = [
            h for h in cfg.custom_hooks
            if h.type == 'GaussianPromptAggregationHook'
        ]
        assert len(gpa) == 1 and 1 <= gpa[0].mean <= epochs
        if not xd and 'tiny' not in name:
            assert (gpa[0].mean, gpa[0].std) == (15.0, 1.0)
    if 'tiny' in name:
        assert model.clip.model_cfg.vision_cfg.width == 128
        return
    assert train.dataset.num_shots == 16
    assert epochs == 20
    depth = 3 if xd else 9
    if name.startswith('maple'):
        assert model.type == 'MaPLeClassifier'
        assert (model.prompt_depth, model.prompt_length) == (9, 2)
    else:
        assert (model.vision_prompt_depth, model.text_prompt_depth) == \
            (depth, depth)
        assert (model.vision_prompt_length, model.text_prompt_length) == \
            (4, 4)
    if '_vit-b16_' in name:
        assert model.clip.openai_file.endswith('ViT-B-16.pt')
        assert (train.batch_size, lr) == (4, 0.0025)
    elif name.split('_')[1] in OTHER_FAMILIES:
        assert model.clip == OTHER_FAMILIES[name.split('_')[1]]
        assert (train.batch_size, lr) == (8, 0.005)
    else:
        assert model.clip.openai_file.endswith('ViT-L-14.pt')
        assert (train.batch_size, lr) == (8, 0.005)
    assert cfg.optim_wrapper.optimizer.momentum == 0.9
    assert cfg.optim_wrapper.optimizer.weight_decay == 5e-4
