"""Case 7 of docs/performance.md: FLOPs per image and the images/s bound."""
import argparse
from typing import Any, Callable, Dict, Optional, Sequence

import torch
import torch.nn.functional as F

from ..common import (Bench, class_names, distiller_cfg, loss_with_text,
                      print_table)
from .training import text_truncation


def count_flops(arch: str, classes: Sequence[int],
                names_kind: str = 'imagenet') -> Dict[str, Any]:
    """FLOPs per image of the model's parts and steps, and per class of the
    text encoder, counted on the meta device (the CPU if that fails)."""
    from torch.utils.flop_counter import FlopCounterMode

    from mmpromptkd.registry import MODELS
    batch = 2  # the smallest the projector's BatchNorm trains on
    try:
        with torch.device('meta'):
            model = MODELS.build(distiller_cfg(arch))
        device = torch.device('meta')
    except Exception:  # pragma: no cover - depends on the torch build
        model = MODELS.build(distiller_cfg(arch))
        device = torch.device('cpu')
    model.train()
    x = torch.randn((batch, 3) + tuple(model.student.image_size),
                    device=device)

    def flops(fn: Callable[[], Any]) -> float:
        # Route attention through ops the counter counts (linear, SDPA).
        enabled = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            with FlopCounterMode(display=False) as counter:
                fn()
        finally:
            torch.backends.mha.set_fastpath_enabled(enabled)
        return float(counter.get_total_flops())

    out: Dict[str, Any] = dict(device=device.type, step_per_image={})
    # On the meta device the text of the largest class list costs nothing
    # to count; its longest prompt sets the length run to the end token.
    names = class_names(max(classes), names_kind)
    # As the distiller runs it (to the end token unless truncate_text=False).
    out['text_per_class'] = flops(
        lambda: model.compute_text_features(names)) / len(names)
    with torch.no_grad():
        for key, truncate in (('text_per_class_full', False),
                              ('text_per_class_to_eot', True)):
            text = text_truncation(model.teacher, truncate)
            out[key] = flops(lambda: text.encode_text(names)) / len(names)
    out['text_tokens_to_eot'] = int(
        model.teacher.tokenize(names).argmax(-1).max()) + 1
    for num in classes:
        text = F.normalize(torch.randn(num, model.teacher.embed_dim,
                                       device=device), dim=-1)
        teacher = flops(lambda: model.teacher_logits(x, text)) / batch
        step = flops(lambda: loss_with_text(model, x, text).backward())
        out['step_per_image'][str(num)] = step / batch
        out.setdefault('teacher_forward', teacher)
        out.setdefault('student_forward_backward', step / batch - teacher)
    model.eval()
    with torch.no_grad():
        out['student_inference'] = flops(
            lambda: model.student.logit_scale.float() * model.student_features(
                x) @ text.t()) / batch
    return out


def bench_roofline(bench: Optional[Bench], args: argparse.Namespace,
                   results: Dict[str, Any]) -> Dict[str, Any]:
    """7. FLOPs per image and the images/s bound; 7b. achieved TFLOP/s."""
    peak = args.peak_tflops * 1e12
    archs = [args.flops_arch]
    if bench is not None and args.arch not in archs:
        archs.append(args.arch)
    out: Dict[str, Any] = dict(peak_tflops=args.peak_tflops, archs={})
    for arch in archs:
        counts = out['archs'][arch] = count_flops(arch, args.classes,
                                                  args.class_names)
        counts['bounds'], rows = {}, []
        for num in args.classes:
            stored = counts['step_per_image'][str(num)]
            recompute = stored + counts['text_per_class'] * num / \
                args.batch_size
            counts['bounds'][str(num)] = dict(
                stored_gflops_per_image=stored / 1e9,
                recompute_gflops_per_image=recompute / 1e9,
                stored_bound_img_s=peak / stored,
                recompute_bound_img_s=peak / recompute)
            rows.append([num, stored / 1e9, recompute / 1e9, peak / stored,
                         peak / recompute])
        giga = {k: f'{v / 1e9:.3g}' for k, v in counts.items()
                if isinstance(v, float)}
        print_table(
            f'7. Roofline ({arch}): FLOPs per image and the images/s bound', [
                'classes', 'stored GFLOP/img', 'recompute GFLOP/img',
                'stored bound img/s', 'recompute bound img/s'
            ], rows, [
                f'peak {args.peak_tflops:g} TFLOP/s; GFLOP per image: teacher '
                f'forward {giga["teacher_forward"]}, student forward+backward '
                f'{giga["student_forward_backward"]}, student inference '
                f'{giga["student_inference"]}; text encoder per class '
                f'{giga["text_per_class"]} ({giga["text_per_class_full"]} '
                f'over the whole context, {giga["text_per_class_to_eot"]} to '
                'the end token)'])
    # Measured throughput against the FLOPs of the measured arch.
    measured = out['archs'].get(args.arch)
    steps = results.get('train_step', {})
    if bench is None or not measured or not steps:
        return out
    on_gpu = bench.device.type == 'cuda' or args.peak_given
    most = str(max(args.classes))
    runs = [(num, mode, fig[mode]['img_s'], f'{mode}_gflops_per_image')
            for num, fig in steps.items() for mode in ('stored', 'recompute')]
    runs += [(most, name, fig['step']['img_s'], 'stored_gflops_per_image')
             for name, fig in results.get('precision', {}).items()
             if name != 'fp32']
    rows, out['measured'] = [], {}
    for num, mode, img_s, key in runs:
        tflops = measured['bounds'][num][key] * img_s / 1e3
        frac = tflops / args.peak_tflops if on_gpu else None
        out['measured'][f'{num}/{mode}'] = dict(
            img_s=img_s, achieved_tflops=tflops, fraction_of_peak=frac)
        rows.append([num, mode, img_s, tflops, 'n/a (not a GPU run)'
                     if frac is None else f'{frac * 100:.2f}%'])
    print_table(
        f'7b. Measured ({args.arch} on {bench.device}) vs the FLOPs',
        ['classes', 'step', 'img/s', 'achieved TFLOP/s', 'of peak'], rows,
        ['achieved = counted FLOPs per image x measured images/s'])
    return out
