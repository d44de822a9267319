"""Values of PromptedCLIP against plain open_clip."""
import open_clip
import pytest
import torch

import mmpromptkd  # noqa: F401
from mmpromptkd.registry import MODELS

NAMES = ['dog', 'red_car', 'sea lion']


def build(clip_cfg, **kwargs):
    return MODELS.build(dict(type='PromptedCLIP', clip=clip_cfg, **kwargs))


def same_clip(dst, src):
    dst.clip.load_state_dict(src.clip.state_dict())


def reference_text(model, names):
    texts = [f'a photo of a {n.replace("_", " ")}.' for n in names]
    return model.clip.encode_text(open_clip.tokenize(texts))


class TestPromptedCLIP:

    def test_depth_zero_equals_open_clip(self, tiny_clip_cfg):
        # All 77 positions, as open_clip computes them.
        model = build(tiny_clip_cfg, truncate_text=False)
        images = torch.randn(3, 3, 32, 32)
        torch.testing.assert_close(
            model.encode_image(images),
            model.clip.encode_image(images),
            atol=1e-6,
            rtol=0)
        torch.testing.assert_close(
            model.encode_text(NAMES),
            reference_text(model, NAMES),
            atol=1e-6,
            rtol=0)
        assert model.prompt_parameters() == {}

    def test_blocked_prompt_attention_equals_depth_zero(self, tiny_clip_cfg):
        plain = build(tiny_clip_cfg)
        prompted = build(
            tiny_clip_cfg, vision_prompt_depth=3, vision_prompt_length=2)
        same_clip(prompted, plain)
        images = torch.randn(2, 3, 32, 32)
        seq = 1 + 16 + 2
        mask = torch.zeros(seq, seq)
        mask[:, -2:] = float('-inf')  # nobody attends to the prompts
        out = prompted.encode_image(images, attn_mask=mask)
        torch.testing.assert_close(
            out, plain.encode_image(images), atol=1e-5, rtol=0)
        # Without the mask the prompts do change the output.
        assert (prompted.encode_image(images) - out).abs().max() > 1e-4

    def test_text_depth_one_at_init_equals_template(self, tiny_clip_cfg):
        model = build(
            tiny_clip_cfg, text_prompt_depth=1, text_prompt_length=4,
            truncate_text=False)
        torch.testing.assert_close(
            model.encode_text(NAMES),
            reference_text(model, NAMES),
            atol=1e-6,
            rtol=0)
        # ctx starts as the embeddings of "a photo of a".
        ids = torch.tensor(model.tokenizer.encode('a photo of a'))
        torch.testing.assert_close(model.text_ctx.data,
                                   model.clip.token_embedding.weight[ids])

    def test_one_tokenizer_per_process(self, tiny_clip_cfg):
        import open_clip
        a, b = build(tiny_clip_cfg), build(tiny_clip_cfg, text_prompt_depth=1)
        assert a.tokenizer is b.tokenizer
        assert 'tokenizer' not in a.__dict__  # nothing per model to copy
        torch.testing.assert_close(
            a.tokenize(['red circle']),
            open_clip.tokenize(['a photo of a red circle.']))

    def test_short_ctx_init_falls_back_to_random(self, tiny_clip_cfg):
        model = build(
            tiny_clip_cfg,
            text_prompt_depth=1,
            text_prompt_length=6,
            ctx_init='a photo of a')
        assert model.prompt_prefix == 'X X X X X X'
        tokens = model.tokenize(['cat'])
        assert tokens[0, 1:7].tolist() == [model.tokenizer.encode('X')[0]] * 6
        assert model.text_ctx.std().item() == pytest.approx(0.02, rel=0.5)

    @pytest.mark.parametrize('tower', ['vision', 'text'])
    def test_each_prompt_changes_output(self, tiny_clip_cfg, tower):
        model = build(
            tiny_clip_cfg, vision_prompt_depth=3, text_prompt_depth=3)
        images = torch.randn(2, 3, 32, 32)

        def output():
            with torch.no_grad():
                return (model.encode_image(images)
                        if tower == 'vision' else model.encode_text(NAMES))

        base = output()
        params = [getattr(model, f'{tower}_ctx')] + list(
            getattr(model, f'{tower}_deep_prompts'))
        assert len(params) == 3
        for param in params:
            # Random, not constant: LayerNorm removes a constant shift.
            delta = torch.randn_like(param)
            with torch.no_grad():
                param.add_(delta)
            changed = output()
            with torch.no_grad():
                param.sub_(delta)
            assert (changed - base).abs().max() > 1e-4

    def test_deep_prompt_replaces_previous_tokens(self, tiny_clip_cfg):
        """Block i >= 1 sees only its own prompt, not block i-1's output."""
        model = build(tiny_clip_cfg, vision_prompt_depth=3)
        images = torch.randn(2, 3, 32, 32)
        # With depth 3, the prompt tokens entering block 2 are replaced, so
        # the first-layer prompt only influences blocks 0 and 1 through the
        # class token. Reproduce the forward by hand.
        visual = model.clip.visual
        x = visual.conv1(images).flatten(2).transpose(1, 2)
        x = torch.cat([visual.class_embedding.expand(2, 1, -1), x], 1)
        x = x + visual.positional_embedding
        x = torch.cat([x, model.vision_ctx.expand(2, -1, -1)], 1)
        x = visual.ln_pre(x)
        blocks = visual.transformer.resblocks
        x = blocks[0](x)
        x = torch.cat([x[:, :-4], model.vision_deep_prompts[0].expand(2, -1,
                                                                      -1)], 1)
        x = blocks[1](x)
        x = torch.cat([x[:, :-4], model.vision_deep_prompts[1].expand(2, -1,
                                                                      -1)], 1)
        x = blocks[2](x)
        expected = visual.ln_post(x[:, 0]) @ visual.proj
        torch.testing.assert_close(
            model.encode_image(images), expected, atol=1e-6, rtol=0)

    def test_gradients_reach_prompts_only(self, tiny_clip_cfg):
        model = build(
            tiny_clip_cfg, vision_prompt_depth=3, text_prompt_depth=3)
        logits = model(torch.randn(2, 3, 32, 32), NAMES)
        logits.logsumexp(-1).sum().backward()
        prompts = model.prompt_parameters()
        assert set(prompts) == {
            'vision_ctx', 'vision_deep_prompts.0', 'vision_deep_prompts.1',
            'text_ctx', 'text_deep_prompts.0', 'text_deep_prompts.1'
        }
        for name, param in prompts.items():
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        for name, param in model.clip.named_parameters():
            assert not param.requires_grad and param.grad is None, name

    def test_logits_value(self, tiny_clip_cfg):
        model = build(tiny_clip_cfg, vision_prompt_depth=1)
        images = torch.randn(2, 3, 32, 32)
        image = model.encode_image(images)
        text = model.encode_text(NAMES)
        image = image / image.norm(dim=-1, keepdim=True)
        text = text / text.norm(dim=-1, keepdim=True)
        expected = model.clip.logit_scale.exp() * image @ text.t()
        torch.testing.assert_close(model(images, NAMES), expected)

    def test_grad_checkpointing_same_values(self, tiny_clip_cfg):
        model = build(tiny_clip_cfg, vision_prompt_depth=2)
        ckpt = build(
            tiny_clip_cfg, vision_prompt_depth=2, grad_checkpointing=True)
        ckpt.load_state_dict(model.state_dict())
        images = torch.randn(2, 3, 32, 32)
        for m in (model, ckpt):
            m.train()
            m.encode_image(images).sum().backward()
        torch.testing.assert_close(ckpt.vision_ctx.grad, model.vision_ctx.grad)

    def test_clip_stays_in_eval_and_frozen(self, tiny_clip_cfg):
        model = build(tiny_clip_cfg, vision_prompt_depth=1).train()
        assert model.training and not model.clip.training

    def test_image_only(self, tiny_clip_cfg):
        model = build(tiny_clip_cfg, vision_prompt_depth=1, text_tower=False)
        assert not any(
            k.startswith('clip.transformer') for k in model.state_dict())
        with pytest.raises(RuntimeError, match='text_tower=False'):
            model.encode_text(NAMES)
        with pytest.raises(ValueError, match='text_prompt_depth'):
            build(tiny_clip_cfg, text_prompt_depth=1, text_tower=False)

    @pytest.mark.parametrize('precision,tol', [('bf16', 0.1), ('fp16', 0.02)])
    def test_precision(self, tiny_clip_cfg, precision, tol):
        full = build(tiny_clip_cfg, vision_prompt_depth=2)
        low = build(
            dict(tiny_clip_cfg, precision=precision), vision_prompt_depth=2)
        low.load_state_dict(full.state_dict())
        assert low.dtype == {'bf16': torch.bfloat16, 'fp16': torch.float16
                             }[precision]
        assert low.vision_ctx.dtype == torch.float32  # prompts stay fp32
        images = torch.randn(2, 3, 32, 32)
        out = low.encode_image(images, normalize=True).float()
        ref = full.encode_image(images, normalize=True)
        assert (out - ref).abs().max() < tol

    def test_fp16_prompt_rounding(self, tiny_clip_cfg):
        exact = build(tiny_clip_cfg, vision_prompt_depth=1)
        rounded = build(
            tiny_clip_cfg, vision_prompt_depth=1, round_prompts_to_fp16=True)
        rounded.load_state_dict(exact.state_dict())
        with torch.no_grad():
            exact.vision_ctx.copy_(exact.vision_ctx.half().float())
        images = torch.randn(2, 3, 32, 32)
        torch.testing.assert_close(
            rounded.encode_image(images), exact.encode_image(images))


class TestPromptedCLIPErrors:

    def test_depth_above_blocks(self, tiny_clip_cfg):
        with pytest.raises(ValueError, match='vision_prompt_depth=4'):
            build(tiny_clip_cfg, vision_prompt_depth=4)
        with pytest.raises(ValueError, match='text_prompt_depth=9'):
            build(tiny_clip_cfg, text_prompt_depth=9)

    def test_ctx_too_long(self, tiny_clip_cfg):
        with pytest.raises(ValueError, match='text_prompt_length=75'):
            build(tiny_clip_cfg, text_prompt_depth=1, text_prompt_length=75)

    def test_class_name_too_long(self, tiny_clip_cfg):
        model = build(tiny_clip_cfg)
        with pytest.raises(ValueError, match='longer than the context'):
            model.encode_text(['word ' * 80])


def test_external_prompts(tiny_clip_cfg):
    """Prompts given to encode_* replace the model's own (used by MaPLe)."""
    model = build(tiny_clip_cfg, vision_prompt_depth=2, text_prompt_depth=2)
    images = torch.randn(2, 3, 32, 32)
    own_v, own_t = model.own_prompts('vision'), model.own_prompts('text')
    torch.testing.assert_close(
        model.encode_image(images, prompts=own_v), model.encode_image(images))
    other_v = [torch.randn_like(p) for p in own_v]
    other_t = [torch.randn_like(p) for p in own_t]
    swapped = build(tiny_clip_cfg, vision_prompt_depth=2, text_prompt_depth=2)
    swapped.load_state_dict(model.state_dict())
    with torch.no_grad():
        for p, q in zip(swapped.own_prompts('vision'), other_v):
            p.copy_(q)
        for p, q in zip(swapped.own_prompts('text'), other_t):
            p.copy_(q)
    torch.testing.assert_close(
        model.encode_image(images, prompts=other_v),
        swapped.encode_image(images))
    torch.testing.assert_close(
        model.encode_text(NAMES, prompts=other_t), swapped.encode_text(NAMES))
    with pytest.raises(ValueError, match='vision prompts: expected 2'):
        model.encode_image(images, prompts=other_v[:1])


def test_text_truncated_at_last_end_token(tiny_clip_cfg):
    """Running the causal text tower to the last end token only changes
    nothing but float rounding."""
    model = build(tiny_clip_cfg, text_prompt_depth=3)
    with torch.no_grad():
        for prompt in model.own_prompts('text'):
            prompt.normal_()
    names = ['cat', 'a much longer class name with many words']
    short = model.encode_text(names, normalize=True)
    tokens, _, length = model._tokens(names)
    assert length == int(tokens.argmax(-1).max()) + 1 < 77
    full = build(tiny_clip_cfg, text_prompt_depth=3, truncate_text=False)
    full.load_state_dict(model.state_dict())
    torch.testing.assert_close(full.encode_text(names, normalize=True),
                               short, atol=1e-6, rtol=0)
    # Against plain open_clip at depth 0, as above, with truncation on.
    plain = build(tiny_clip_cfg)
    torch.testing.assert_close(
        plain.encode_text(NAMES), reference_text(plain, NAMES),
        atol=5e-6, rtol=1e-6)


def test_text_only_model(tiny_clip_cfg):
    from mmpromptkd.registry import MODELS
    full = MODELS.build(
        dict(type='PromptedCLIP', clip=tiny_clip_cfg, text_prompt_depth=2))
    text_only = MODELS.build(
        dict(
            type='PromptedCLIP',
            clip=tiny_clip_cfg,
            text_prompt_depth=2,
            image_tower=False))
    assert not any(k.startswith('clip.visual') for k in text_only.state_dict())
    text_only.load_state_dict(
        {k: v
         for k, v in full.state_dict().items() if k in text_only.state_dict()})
    assert text_only.embed_dim == full.embed_dim
    names = ['red circle', 'cat']
    assert torch.equal(text_only.encode_text(names), full.encode_text(names))
    with pytest.raises(RuntimeError, match='image_tower=False'):
        text_only.encode_image(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match='vision_prompt_depth must be 0'):
        MODELS.build(
            dict(
                type='PromptedCLIP',
                clip=tiny_clip_cfg,
                vision_prompt_depth=1,
                image_tower=False))


def test_unfrozen_token_embedding_trains(tiny_clip_cfg):
    """freeze_clip=False trains the token embedding too, also after the
    class names' tokens are cached, and a reloaded embedding is used."""
    model = build(tiny_clip_cfg, text_prompt_depth=2, freeze_clip=False)
    model.encode_text(NAMES).sum().backward()
    model.zero_grad()
    model.encode_text(NAMES).sum().backward()  # from the token cache
    grad = model.clip.token_embedding.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    before = model.encode_text(NAMES).detach()
    with torch.no_grad():
        model.clip.token_embedding.weight.mul_(2)
    assert not torch.allclose(model.encode_text(NAMES), before)
