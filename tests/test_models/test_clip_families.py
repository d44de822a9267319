"""PromptedCLIP on every kind of open_clip tower against open_clip's own.

Each family is represented by a small random model of its real tower
classes (timm's smallest variant of the family where it has one): at
depth 0 the prompted encoders equal the model's own ``encode_image`` /
``encode_text``; with prompts the output changes and the prompts receive
gradients; convolutional towers refuse visual prompts, saying why.
"""
import pytest
import torch
from timm.layers import apply_rot_embed_cat

import mmpromptkd  # noqa: F401
from mmpromptkd.models.clip.towers import (OpenCLIPViTTower, TimmEvaTower,
                                           TimmViTTower, VisionTower)
from mmpromptkd.models.clip.towers.timm_vit_tower import _with_identity_rows
from mmpromptkd.registry import MODELS
from scaled_open_clip import scaled_model_cfg, small_timm_trunks

NAMES = ['dog', 'red_car', 'sea lion']
#: A change of normalised features ten times the parity tolerance (4
#: prompts among 577 tokens of PE-Core's random, near-uniform attention
#: move them by 3e-4).
CHANGED = 1e-4
TEXT = dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=3)
OPENCLIP_VIT = dict(image_size=32, patch_size=8, width=32, layers=3,
                    head_width=16)


def _timm(name: str, size: int, pool: str, proj) -> dict:
    return dict(timm_model_name=name, timm_model_pretrained=False,
                timm_pool=pool, timm_proj=proj, image_size=size)


def _model(vision: dict, text: dict = None, custom: bool = True,
           embed_dim: int = 24, **extra):
    return dict(embed_dim=embed_dim, vision_cfg=vision,
                text_cfg=dict(TEXT, **(text or {})), custom_text=custom,
                **extra)


#: family -> (model_cfg, tower class): open_clip's own configs scaled down
#: (mmpromptkd.testing), and settings no open_clip config combines.
FAMILIES = {
    'openai-vit': (_model(OPENCLIP_VIT, custom=False), OpenCLIPViTTower),
    'vit-avg-pool-bidirectional-last-token-text':
    (_model(dict(OPENCLIP_VIT, pool_type='avg', final_ln_after_pool=True),
            dict(no_causal_mask=True, pool_type='last'), custom=False),
     OpenCLIPViTTower),
    'vit-attention-pool-eos-text':
    (_model(dict(OPENCLIP_VIT, attentional_pool=True, attn_pooler_queries=1,
                 attn_pooler_heads=2),
            dict(pool_type='eos', eos_id=49407), custom=False),
     OpenCLIPViTTower),
    'eva02': (scaled_model_cfg('EVA02-L-14'), TimmEvaTower),
    'pe-core': (scaled_model_cfg('PE-Core-L-14-336'), TimmEvaTower),
    # SigLIP's towers with CLIP's tokenizer (its own is a Hugging Face one).
    'siglip-vit-map-pool': (_model(
        _timm('vit_base_patch16_siglip_256', 256, 'map', 'none'),
        dict(no_causal_mask=True, pool_type='last'), embed_dim=64,
        init_logit_bias=-10.0), TimmViTTower),
    'mobileclip2-fastvit': (scaled_model_cfg('MobileCLIP2-S2'), VisionTower),
    'convnext': (scaled_model_cfg('convnext_base'), VisionTower),
    'resnet': (scaled_model_cfg('RN50'), VisionTower),
}


def _build(family: str, **kwargs):
    return _build_cfg(dict(type='PromptedCLIP', clip=dict(
        model_cfg=FAMILIES[family][0]), **kwargs))


def _build_cfg(cfg: dict):
    """A model of scaled-down towers (timm trunks included)."""
    with small_timm_trunks():
        return MODELS.build(cfg)


def _images(model) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(2, 3, *model.image_size)


def _assert_same(features: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal to 1e-5 of the largest feature (random timm heads give
    features of about 1e-5 in all)."""
    scale = expected.abs().max()
    assert scale > 0
    torch.testing.assert_close(features / scale, expected / scale, atol=1e-5,
                               rtol=0)


def _trained_looking(model) -> None:
    """Prompts of unit scale: the initial ones (std 0.02) move the
    features of some random towers by less than 1e-3."""
    with torch.no_grad():
        for prompt in model.prompt_parameters().values():
            prompt.normal_()


@pytest.fixture(scope='module')
def plain_models():
    """Every family at depth 0, built once."""
    torch.manual_seed(0)
    return {family: _build(family) for family in FAMILIES}


@pytest.mark.parametrize('family', FAMILIES)
class TestEveryFamily:

    def test_tower_kind(self, family, plain_models):
        assert type(plain_models[family].vision_tower) is FAMILIES[family][1]

    def test_depth_zero_image_features_equal_open_clip(
            self, family, plain_models):
        model = plain_models[family]
        images = _images(model)
        with torch.no_grad():
            _assert_same(model.encode_image(images),
                         model.clip.encode_image(images))

    @pytest.mark.parametrize('truncate_text', [True, False])
    def test_depth_zero_text_features_equal_open_clip(
            self, family, plain_models, truncate_text):
        model = plain_models[family]
        model.truncate_text = truncate_text
        model._text_cache = None
        with torch.no_grad():
            _assert_same(model.encode_text(NAMES),
                         model.clip.encode_text(model.tokenize(NAMES)))
        model.truncate_text = True
        model._text_cache = None

    def test_text_prompts_change_features_and_train(self, family,
                                                    plain_models):
        model = _build(family, text_prompt_depth=2)
        model.clip.load_state_dict(plain_models[family].clip.state_dict())
        _trained_looking(model)
        plain = plain_models[family].encode_text(NAMES, normalize=True)
        prompted = model.encode_text(NAMES, normalize=True)
        assert (prompted - plain.detach()).abs().max() > CHANGED
        prompted.sum().backward()
        for prompt in model.own_prompts('text'):
            assert prompt.grad is not None and prompt.grad.abs().sum() > 0

    def test_visual_prompts(self, family, plain_models):
        if not FAMILIES[family][1].takes_prompts:
            with pytest.raises(ValueError, match='convolutional'):
                _build(family, vision_prompt_depth=1)
            model = plain_models[family]
            with pytest.raises(ValueError, match='attn_mask'):
                model.encode_image(_images(model), attn_mask=torch.zeros(1))
            return
        model = _build(family, vision_prompt_depth=2, text_tower=False)
        model.clip.visual.load_state_dict(
            plain_models[family].clip.visual.state_dict())
        _trained_looking(model)
        images = _images(model)
        # Normalised: random timm heads give features of about 1e-5.
        plain = plain_models[family].encode_image(images, normalize=True)
        prompted = model.encode_image(images, normalize=True)
        assert (prompted - plain.detach()).abs().max() > CHANGED
        prompted.sum().backward()
        for prompt in model.own_prompts('vision'):
            assert prompt.grad is not None and prompt.grad.abs().sum() > 0


def test_prompt_tokens_take_no_rotary_position():
    torch.manual_seed(0)
    rope = torch.randn(6, 16)  # 6 patches, [sin, cos] of 8 channels each
    tokens = torch.randn(1, 2, 6 + 3, 8)  # 3 prompt tokens after them
    rotated = apply_rot_embed_cat(tokens, _with_identity_rows(rope, 3))
    torch.testing.assert_close(rotated[..., 6:, :], tokens[..., 6:, :])
    torch.testing.assert_close(rotated[..., :6, :],
                               apply_rot_embed_cat(tokens[..., :6, :], rope))


def test_gradient_checkpointing_gives_the_same_features():
    model = _build('eva02', vision_prompt_depth=2, text_tower=False)
    model.train()
    images = _images(model)
    plain = model.encode_image(images)
    model.grad_checkpointing = True
    torch.testing.assert_close(model.encode_image(images), plain)


@pytest.mark.parametrize('setting, match', [
    (dict(multimodal_cfg=dict(width=32)), 'CoCa'),
    (dict(text_cfg=dict(hf_model_name='roberta-base')), 'Hugging Face'),
    (dict(vision_cfg=dict(OPENCLIP_VIT, timm_model_pretrained=True)),
     'download'),
    (dict(cast_dtype='float16'), 'not open_clip model settings'),
])
def test_refused_model_configs_say_why(setting, match):
    model_cfg = dict(_model(OPENCLIP_VIT, custom=False), **setting)
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='PromptedCLIP', clip=dict(model_cfg=model_cfg)))


def test_maple_needs_a_tower_with_tokens():
    model_cfg = FAMILIES['resnet'][0]
    with pytest.raises(ValueError, match='convolutional'):
        _build_cfg(dict(type='MaPLeClassifier', clip=dict(
            model_cfg=model_cfg), prompt_depth=1))


def test_a_second_family_trains_as_stage_a_teacher():
    """PromptSRC with EVA02 towers: its loss reaches every prompt."""
    from mmpretrain.structures import DataSample
    model = _build_cfg(dict(
        type='PromptSRCClassifier', clip=dict(model_cfg=FAMILIES['eva02'][0]),
        vision_prompt_depth=2, text_prompt_depth=2))
    model.prepare_text_features(NAMES, for_training=True)
    model.train()
    samples = [DataSample().set_gt_label(i) for i in (0, 2)]
    losses = model(torch.randn(2, 3, 224, 224), samples, 'loss')
    sum(losses.values()).backward()
    prompts = model.prompted_clip.prompt_parameters()
    assert len(prompts) == 4
    for name, prompt in prompts.items():
        assert prompt.grad is not None and prompt.grad.abs().sum() > 0, name


def _student_grads(teacher: dict, student: dict, **student_settings):
    """One distillation step of a cross-family pair on unlabeled images;
    the gradients of what the student trains."""
    distiller = _build_cfg(dict(
        type='PromptKDDistiller', allow_untrained_teacher=True,
        student=dict(clip=dict(model_cfg=student), **student_settings),
        teacher=dict(clip=dict(model_cfg=teacher), vision_prompt_depth=2,
                     text_prompt_depth=2),
        distill_loss=dict(type='KLLogitLoss', loss_weight=1.0, tau=1.0)))
    distiller.prepare_text_features(NAMES, for_training=True)
    distiller.train()
    size = distiller.student.image_size
    loss = distiller(torch.randn(2, 3, *size), [None, None], mode='loss')
    loss['loss_kd'].backward()
    # Not fc1's bias: the batch norm after it cancels its gradient.
    return {
        name: p.grad
        for name, p in distiller.named_parameters()
        if p.requires_grad and name != 'projector.fc1.bias'
    }


def test_second_family_teacher_distils_into_a_clip_student():
    student = _model(dict(OPENCLIP_VIT, image_size=224, patch_size=32),
                     custom=False)
    grads = _student_grads(FAMILIES['eva02'][0], student,
                           vision_prompt_depth=2)
    assert any(n.startswith('student.vision') for n in grads)
    assert any(n.startswith('projector.') for n in grads)
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values())


def test_clip_teacher_distils_into_a_convolutional_student():
    teacher = _model(dict(OPENCLIP_VIT, image_size=256, patch_size=64),
                     custom=False)
    grads = _student_grads(teacher, FAMILIES['mobileclip2-fastvit'][0])
    # No visual prompts: the projector is what a frozen FastViT student
    # trains.
    assert grads and all(n.startswith('projector.') for n in grads)
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values())


def test_a_logit_bias_changes_no_distillation_loss():
    """Sigmoid-loss models (SigLIP) add a learned bias to every logit;
    softmax over the classes, and so the KD loss, ignores a shift that is
    the same for all classes of an image."""
    torch.manual_seed(0)
    loss = MODELS.build(dict(type='KLLogitLoss', tau=2.0))
    student, teacher = torch.randn(4, 5), torch.randn(4, 5)
    bias = torch.randn(4, 1) * 10
    torch.testing.assert_close(loss(student + bias, teacher - bias),
                               loss(student, teacher))
