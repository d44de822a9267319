"""The official code's pure-fp16 precision (``reference_fp16=True``)."""
import re

import pytest
import torch
import torch.nn.functional as F
from open_clip.transformer import LayerNormFp32

import mmpromptkd  # noqa: F401
from mmpromptkd.registry import MODELS

CLASSES = ['cat', 'dog', 'red car', 'tree', 'blue house']

# What OpenAI CLIP's ``convert_weights`` makes fp16, by parameter name
# (written out here from the official code's rule, not derived from ours):
# convolution / linear weights and biases, the attention input projection
# and the two projection matrices; plus the prompt learner's text context.
FP16_NAMES = re.compile(
    r'(^|\.)(conv1\.weight|attn\.in_proj_(weight|bias)|'
    r'attn\.out_proj\.(weight|bias)|mlp\.c_(fc|proj)\.(weight|bias)|'
    r'visual\.proj|text_projection|text_ctx)$')


def build(clip_cfg, **kwargs):
    return MODELS.build(
        dict(type='PromptedCLIP', clip=clip_cfg, vision_prompt_depth=2,
             text_prompt_depth=2, **kwargs))


def test_dtypes_as_the_official_code_keeps_them(tiny_clip_cfg):
    model = build(tiny_clip_cfg, reference_fp16=True)
    halves = []
    for name, param in model.named_parameters():
        expected = torch.float16 if FP16_NAMES.search(name) else torch.float32
        assert param.dtype == expected, name
        halves.append(param.dtype == torch.float16)
    assert any(halves) and not all(halves)
    # Layer norms have fp32 weights and compute in fp32, then cast back.
    ln = model.clip.visual.ln_pre
    x = torch.randn(2, 5, ln.normalized_shape[0]).half()
    expected = F.layer_norm(x.float(), ln.normalized_shape, ln.weight,
                            ln.bias, ln.eps).half()
    assert torch.equal(ln(x), expected)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(isinstance(m, LayerNormFp32) for m in norms)


def test_layer_norms_keep_their_parameters(tiny_clip_cfg):
    """The converted norms hold the same Parameter objects (an optimizer
    built before still updates them)."""
    from mmpromptkd.models.utils.reference_fp16 import \
        convert_to_reference_fp16
    model = build(tiny_clip_cfg)
    before = dict(model.named_parameters())
    convert_to_reference_fp16(model)
    after = dict(model.named_parameters())
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)


def test_features_close_to_fp32(tiny_clip_cfg):
    reference = build(tiny_clip_cfg)
    half = build(tiny_clip_cfg, reference_fp16=True)
    half.load_state_dict(reference.state_dict())
    images = torch.randn(3, 3, 32, 32)
    image = half.encode_image(images, normalize=True)
    text = half.encode_text(CLASSES, normalize=True)
    assert image.dtype == text.dtype == torch.float16
    # Same weights except for fp16 rounding: close, but not equal.
    for got, want in ((image, reference.encode_image(images, True)),
                      (text, reference.encode_text(CLASSES, True))):
        err = (got.float() - want).abs().max().item()
        assert 0 < err < 2e-2


def test_distiller_trains_fp16_tensors_in_fp16(tiny_clip_cfg,
                                               tiny_large_clip_cfg):
    model = MODELS.build(
        dict(type='PromptKDDistiller',
             allow_untrained_teacher=True,
             student=dict(clip=tiny_clip_cfg, vision_prompt_depth=2),
             teacher=dict(clip=tiny_large_clip_cfg, vision_prompt_depth=2,
                          text_prompt_depth=2),
             reference_fp16=True))
    model.prepare_text_features(CLASSES, for_training=True)
    assert model.projector.fc1.weight.dtype == torch.float16
    assert model.projector.bn.weight.dtype == torch.float32
    images = torch.randn(4, 3, 32, 32)
    # Logits in fp16, as the official code computes them.
    assert model.student_logits(images).dtype == torch.float16
    assert model.teacher_logits(
        images, model.text_features).dtype == torch.float16

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.005, momentum=0.9,
                                weight_decay=5e-4)
    before = {id(p): p.detach().clone() for p in params}
    loss = model(images, [None] * 4, mode='loss')['loss_kd']
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    dtypes = {p.dtype for p in params}
    assert dtypes == {torch.float16, torch.float32}
    for p in params:
        state = optimizer.state[p]['momentum_buffer']
        assert p.dtype == state.dtype == p.grad.dtype
        assert not torch.equal(p, before[id(p)])
    # The fp32 prompts and the fp16 projector both trained.
    assert model.student.vision_ctx.dtype == torch.float32


def test_maple_halves_its_first_map_only(tiny_large_clip_cfg):
    model = MODELS.build(
        dict(type='MaPLeClassifier', clip=tiny_large_clip_cfg,
             prompt_depth=2, prompt_length=2, reference_fp16=True))
    assert [m.weight.dtype for m in model.vision_prompt_maps
            ] == [torch.float16, torch.float32]
    assert model.prompted_clip.text_ctx.dtype == torch.float16
    features = model.encode_image(torch.randn(2, 3, 32, 32), normalize=True)
    assert features.dtype == torch.float16 and torch.isfinite(features).all()


@pytest.mark.parametrize('cls', ['PromptSRCClassifier', 'IVLPClassifier'])
def test_stage_a_classifiers_take_the_switch(tiny_large_clip_cfg, cls):
    model = MODELS.build(
        dict(type=cls, clip=tiny_large_clip_cfg, vision_prompt_depth=2,
             text_prompt_depth=2, reference_fp16=True))
    assert model.prompted_clip.text_ctx.dtype == torch.float16
    assert model.prompted_clip.clip.visual.conv1.weight.dtype == \
        torch.float16
