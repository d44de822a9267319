"""Case 6: bf16 / fp16 autocast: step time and agreement with fp32."""
import contextlib
from typing import Any, Dict, Optional

import torch

from ..common import (Bench, distiller_cfg, print_table, set_classes)


# 6. Precision.
def _autocast(device: torch.device, dtype: Optional[torch.dtype]):
    return (torch.autocast(device.type, dtype=dtype)
            if dtype is not None else contextlib.nullcontext())


def _logits(model, inputs: torch.Tensor,
            amp_dtype: Optional[torch.dtype]) -> Dict[str, torch.Tensor]:
    """Student and teacher training logits of one batch, in fp32."""
    with torch.no_grad(), _autocast(inputs.device, amp_dtype):
        return dict(
            student=model.student_logits(inputs, for_training=True).float(),
            teacher=model.teacher_logits(inputs, model.text_features).float())


def bench_precision(bench: Bench) -> Dict[str, Any]:
    """Mixed precision: step time and agreement with fp32."""
    from mmpromptkd.registry import MODELS

    args, model, device = bench.args, bench.model, bench.device
    set_classes(model, bench.names)
    bench.reset()
    inputs = bench.batch(seed_offset=2)
    variants = [('fp32', None, 'fp32'),
                ('bf16 autocast', torch.bfloat16, 'fp32'),
                ('bf16 autocast, bf16 teacher', torch.bfloat16, 'bf16')]
    if device.type == 'cuda':
        variants += [('fp16 autocast + GradScaler', torch.float16, 'fp32'),
                     ('fp16 autocast + GradScaler, fp16 teacher',
                      torch.float16, 'fp16')]
    # Agreement first, while every variant has the same (reset) weights.
    out: Dict[str, Any] = {}
    steps: Dict[str, dict] = {}
    reference = None
    for name, dtype, teacher_precision in variants:
        variant = model
        if teacher_precision != 'fp32':
            # The fp32 model's weights; the half teacher stores its own text
            # features, as a run with this config would.
            cfg = distiller_cfg(args.arch, teacher_precision=teacher_precision)
            variant = MODELS.build(cfg).to(device).train()
            variant.load_state_dict(model.state_dict(), strict=True)
            variant.teacher.load_state_dict(model.teacher.state_dict())
            set_classes(variant, bench.names, force=True)
        logits = _logits(variant, inputs, dtype)
        logits['loss'] = variant.distill_loss(logits['student'],
                                              logits['teacher'])
        reference = reference or logits
        out[name] = dict(
            max_abs_diff_student_logits=(
                logits['student'] - reference['student']).abs().max().item(),
            max_abs_diff_teacher_logits=(
                logits['teacher'] - reference['teacher']).abs().max().item(),
            loss_rel_diff=((logits['loss'] - reference['loss']).abs() /
                           reference['loss'].abs().clamp_min(1e-12)).item())
        steps[name] = dict(amp_dtype=dtype)
        if variant is not model:
            steps[name]['model'] = variant
        if dtype == torch.float16:
            steps[name]['scaler'] = torch.amp.GradScaler(device.type)
    timed = bench.time_steps(steps, inputs)
    del steps
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    rows = []
    base_ms = timed['fp32']['median_ms']
    for name, fig in out.items():
        fig['step'] = timed[name]
        fig['speedup_vs_fp32'] = base_ms / timed[name]['median_ms']
        rows.append([
            name, timed[name]['median_ms'], f'{fig["speedup_vs_fp32"]:.2f}x',
            fig['max_abs_diff_student_logits'],
            fig['max_abs_diff_teacher_logits'], fig['loss_rel_diff']
        ])
    print_table('6. Precision: step time and agreement with fp32', [
        'variant', 'step ms', 'speed vs fp32', 'max|dS|', 'max|dT|',
        'loss rel diff'
    ], rows, [
        'prompts and projector stay fp32 (master weights); dS / dT: '
        'student / teacher logits vs fp32 on the same batch and weights',
        f'logit scale {float(model.student.logit_scale):.1f}; batch '
        f'{args.batch_size}, {len(bench.names)} classes'
    ])
    return out
