"""Case 8: candidate speed-ups measured against the current code."""
from typing import Any, Dict, Sequence

import torch
import torch.nn.functional as F

from ..common import (Bench, class_names, print_table, set_classes,
                      time_interleaved)


# 8. Candidate speed-ups.
def encode_text_to_eot(model,
                       names: Sequence[str],
                       normalize: bool = True) -> torch.Tensor:
    """``PromptedCLIP.encode_text`` over the tokens up to the last EOT only.

    The text tower's attention is causal and the feature is read at the end
    token, so tokens after the longest prompt's end token cannot change any
    feature: running only ``max(eot) + 1`` positions gives the same result.
    """
    clip = model.clip
    device = clip.token_embedding.weight.device
    # Token ids are built on the CPU: the length is read from them (also
    # when the model lives on the meta device, to count FLOPs).
    tokens = model.tokenize(names)
    eot = tokens.argmax(dim=-1)
    length = int(eot.max()) + 1
    tokens, eot = tokens[:, :length].to(device), eot.to(device)
    with torch.no_grad():
        x = clip.token_embedding(tokens)
    x = x.to(clip.transformer.get_cast_dtype())
    num, n_t = x.shape[0], model.text_prompt_length
    prompts = model.own_prompts('text')

    def insert(x: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        prompt = prompt.to(x.dtype).unsqueeze(0).expand(num, -1, -1)
        return torch.cat([x[:, :1], prompt, x[:, 1 + n_t:]], dim=1)

    if prompts:
        x = insert(x, prompts[0])
    x = x + clip.positional_embedding[:length].to(x.dtype)
    mask = clip.attn_mask[:length, :length]
    for i, block in enumerate(clip.transformer.resblocks):
        if 1 <= i < len(prompts):
            x = insert(x, prompts[i])
        if clip.transformer.batch_first:
            x = block(x, attn_mask=mask)
        else:
            x = block(x.transpose(0, 1), attn_mask=mask).transpose(0, 1)
    x = clip.ln_final(x)[torch.arange(num, device=x.device), eot]
    proj = clip.text_projection
    x = proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj
    return F.normalize(x, dim=-1) if normalize else x


def bench_ideas(bench: Bench) -> Dict[str, Any]:
    """Measure candidate speed-ups against the current code."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    args, model, device = bench.args, bench.model, bench.device
    teacher = model.teacher
    out: Dict[str, Any] = dict(text_to_eot={})
    rows = []
    with torch.no_grad():
        for num in args.classes:
            names = class_names(num, args.class_names)
            full = teacher.encode_text(names, normalize=True)
            short = encode_text_to_eot(teacher, names)
            diff = (full.float() - short.float()).abs().max().item()
            length = int(teacher.tokenize(names).argmax(-1).max()) + 1
            timed = time_interleaved(
                dict(
                    full=lambda: teacher.encode_text(names, normalize=True),
                    to_eot=lambda: encode_text_to_eot(teacher, names)),
                args.iters, args.warmup, device)
            fig = dict(
                full=timed['full'],
                to_eot=timed['to_eot'],
                tokens=length,
                context_length=teacher.clip.context_length,
                speedup=timed['full']['median_ms'] /
                timed['to_eot']['median_ms'],
                max_abs_diff=diff)
            out['text_to_eot'][str(num)] = fig
            rows.append([
                f'text encoder to EOT, {num} classes',
                timed['full']['median_ms'], timed['to_eot']['median_ms'],
                f'{fig["speedup"]:.2f}x', f'{diff:.1e}'
            ])
    set_classes(model, bench.names)
    inputs = bench.batch()
    timed = bench.time_steps(
        dict(
            plain=dict(inputs=inputs),
            channels_last=dict(
                inputs=inputs.contiguous(memory_format=torch.channels_last)),
            sdpa_math=dict(
                inputs=inputs, around=lambda: sdpa_kernel(SDPBackend.MATH))))
    for key, label in (('channels_last', 'channels-last input, train step'),
                       ('sdpa_math', 'SDPA math kernel, train step')):
        fig = dict(
            current=timed['plain'],
            candidate=timed[key],
            speedup=timed['plain']['median_ms'] / timed[key]['median_ms'])
        out[key] = fig
        rows.append([
            label, timed['plain']['median_ms'], timed[key]['median_ms'],
            f'{fig["speedup"]:.2f}x', '-'
        ])
    tokens = out['text_to_eot'][str(args.classes[-1])]['tokens']
    print_table(
        '8. Candidate speed-ups (current vs candidate)',
        ['idea', 'current ms', 'candidate ms', 'speed-up', 'max |diff|'], rows,
        [
            'text to EOT: run the teacher text tower (no grad) over the first '
            f'max(eot)+1 = {tokens} of {teacher.clip.context_length} tokens; '
            'its causal attention makes the features equal up to rounding',
            'channels-last: images in channels-last memory format (only the '
            'patch-embedding convolution can use it)',
            'SDPA math: the unfused attention kernel instead of the fused one '
            'the current code gets (a check, not a proposal)'
        ])
    return out
