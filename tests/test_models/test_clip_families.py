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
from mmpromptkd.models.clip.towers.timm_eva_tower import _with_identity_rows
from mmpromptkd.registry import MODELS

NAMES = ['dog', 'red_car', 'sea lion']
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


#: family -> (model_cfg, tower class, image size)
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
    'eva02': (_model(_timm('eva02_tiny_patch14_224', 224, 'token', None)),
              TimmEvaTower),
    'pe-core': (_model(_timm('vit_pe_core_tiny_patch16_384', 384, 'map',
                             None), dict(context_length=12)),
                TimmEvaTower),
    'siglip-vit-map-pool': (_model(
        _timm('vit_tiny_patch16_224', 224, 'map', 'none'),
        dict(no_causal_mask=True, pool_type='last'), embed_dim=192,
        init_logit_bias=-10.0),
                            TimmViTTower),
    'mobileclip-fastvit': (_model(_timm('fastvit_mci0', 256, 'avg', 'linear'),
                                  dict(no_causal_mask=True)), VisionTower),
    'convnext': (_model(_timm('convnext_atto', 64, '', 'linear'),
                        custom=False), VisionTower),
    'resnet': (_model(dict(layers=[1, 1, 1, 1], width=16, head_width=16,
                           image_size=64), custom=False), VisionTower),
}


def _build(family: str, **kwargs):
    model_cfg = FAMILIES[family][0]
    return MODELS.build(
        dict(type='PromptedCLIP', clip=dict(model_cfg=model_cfg), **kwargs))


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
        plain = plain_models[family].encode_text(NAMES, normalize=True)
        prompted = model.encode_text(NAMES, normalize=True)
        assert (prompted - plain.detach()).abs().max() > 1e-3
        prompted.sum().backward()
        for prompt in model.own_prompts('text'):
            assert prompt.grad is not None and prompt.grad.abs().sum() > 0

    def test_visual_prompts(self, family, plain_models):
        if not FAMILIES[family][1].takes_prompts:
            with pytest.raises(ValueError, match='convolutional'):
                _build(family, vision_prompt_depth=1)
            return
        model = _build(family, vision_prompt_depth=2, text_tower=False)
        model.clip.visual.load_state_dict(
            plain_models[family].clip.visual.state_dict())
        images = _images(model)
        # Normalised: random timm heads give features of about 1e-5.
        plain = plain_models[family].encode_image(images, normalize=True)
        prompted = model.encode_image(images, normalize=True)
        assert (prompted - plain.detach()).abs().max() > 1e-3
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


def test_hugging_face_tokenizer_models_are_image_only():
    model_cfg = _model(_timm('vit_tiny_patch16_224', 224, 'map', 'none'),
                       dict(hf_tokenizer_name='timm/ViT-B-16-SigLIP'),
                       embed_dim=192)
    with pytest.raises(ValueError, match='text_tower=False'):
        MODELS.build(dict(type='PromptedCLIP', clip=dict(model_cfg=model_cfg)))
    student = MODELS.build(
        dict(type='PromptedCLIP', clip=dict(model_cfg=model_cfg),
             vision_prompt_depth=2, text_tower=False))
    assert student.encode_image(torch.randn(1, 3, 224, 224)).shape == (1, 192)


def test_maple_needs_a_tower_with_tokens():
    model_cfg = FAMILIES['resnet'][0]
    with pytest.raises(ValueError, match='convolutional'):
        MODELS.build(dict(type='MaPLeClassifier', clip=dict(
            model_cfg=model_cfg), prompt_depth=1))


def test_a_second_family_trains_as_stage_a_teacher():
    """PromptSRC with EVA02 towers: its loss reaches every prompt."""
    from mmpretrain.structures import DataSample
    model = MODELS.build(dict(
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
    distiller = MODELS.build(dict(
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
    return {
        name: p.grad
        for name, p in distiller.named_parameters() if p.requires_grad
    }


def test_second_family_teacher_distils_into_a_clip_student():
    grads = _student_grads(FAMILIES['eva02'][0],
                           FAMILIES['siglip-vit-map-pool'][0],
                           vision_prompt_depth=2)
    assert any(n.startswith('student.vision') for n in grads)
    assert any(n.startswith('projector.') for n in grads)
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values())


def test_clip_teacher_distils_into_a_convolutional_student():
    teacher = _model(dict(OPENCLIP_VIT, image_size=256, patch_size=64),
                     custom=False)
    grads = _student_grads(teacher, FAMILIES['mobileclip-fastvit'][0])
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
