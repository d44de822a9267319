"""Case 8: candidate speed-ups measured against the current code."""
import copy
from typing import Any, Dict

import torch

from ..common import (Bench, class_names, print_table, set_classes,
                      time_interleaved)


# 8. Candidate speed-ups.
def text_truncation(model, truncate: bool):
    """A shallow copy of a ``PromptedCLIP`` (the same weights) whose text
    tower runs to the last end token only, or over the whole context."""
    model = copy.copy(model)
    model.truncate_text, model._text_cache = truncate, None
    return model


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
            full = text_truncation(teacher, False)
            short = text_truncation(teacher, True)
            diff = (full.encode_text(names, normalize=True).float() -
                    short.encode_text(names, normalize=True).float()
                    ).abs().max().item()
            length = int(teacher.tokenize(names).argmax(-1).max()) + 1
            timed = time_interleaved(
                dict(
                    full=lambda: full.encode_text(names, normalize=True),
                    to_eot=lambda: short.encode_text(names, normalize=True)),
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
            'text to EOT: the teacher text tower (no grad) over the whole '
            'context (truncate_text=False) against the first max(eot)+1 = '
            f'{tokens} of {teacher.clip.context_length} tokens (the default); '
            'its causal attention makes the features equal up to rounding',
            'channels-last: images in channels-last memory format (only the '
            'patch-embedding convolution can use it)',
            'SDPA math: the unfused attention kernel instead of the fused one '
            'the current code gets (a check, not a proposal)'
        ])
    return out
