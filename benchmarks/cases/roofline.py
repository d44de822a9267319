"""Case 7: FLOPs per image and the implied images/s bound."""
import argparse
import contextlib
from typing import Any, Callable, Dict, Iterator, Optional, Sequence

import torch
import torch.nn.functional as F

from ..common import (Bench, class_names, distiller_cfg, loss_with_text,
                      print_table)
from .ideas import text_truncation


# 7. Roofline.
@contextlib.contextmanager
def _mha_slow_path() -> Iterator[None]:
    """Route attention through ops the FLOP counter counts (linear, SDPA)."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


def count_flops(arch: str,
                classes: Sequence[int],
                names_kind: str = 'imagenet') -> Dict[str, Any]:
    """FLOPs per image (and per class) of one arch, on the meta device.

    The step is counted through the same calls as
    ``model(inputs, mode='loss')`` but with explicit text features, so that
    no stored state has to live on the meta device. Falls back to the CPU if
    a meta build fails. Batch 2 is the smallest the projector's BatchNorm
    accepts in training.

    Args:
        arch (str): Architecture.
        classes (Sequence[int]): Class counts (the logits depend on them).
        names_kind (str): Class names, see :func:`class_names`; they set
            the length of the text run to the end token. Defaults to
            'imagenet'.

    Returns:
        dict: FLOPs of the teacher forward, student forward + backward,
        student inference and text encoding per class, and of the step per
        class count.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from mmpromptkd.registry import MODELS
    cfg = distiller_cfg(arch)
    batch = 2
    try:
        with torch.device('meta'):
            model = MODELS.build(cfg)
        device = torch.device('meta')
    except Exception:  # pragma: no cover - depends on the torch build
        model = MODELS.build(cfg)
        device = torch.device('cpu')
    model.train()
    x = torch.randn(
        (batch, 3) + tuple(model.student.image_size), device=device)

    def flops(fn: Callable[[], Any]) -> float:
        with _mha_slow_path(), FlopCounterMode(display=False) as counter:
            fn()
        return float(counter.get_total_flops())

    out: Dict[str, Any] = dict(device=device.type, step_per_image={})
    # On the meta device the text of the largest class list costs nothing
    # to count; its longest prompt sets the length run to the end token.
    text_names = class_names(max(classes), names_kind)
    # As the distiller runs it (to the end token unless truncate_text=False).
    out['text_per_class'] = flops(
        lambda: model.compute_text_features(text_names)) / len(text_names)
    with torch.no_grad():
        for key, truncate in (('text_per_class_full', False),
                              ('text_per_class_to_eot', True)):
            text = text_truncation(model.teacher, truncate)
            out[key] = flops(
                lambda: text.encode_text(text_names)) / len(text_names)
    out['text_tokens_to_eot'] = int(
        model.teacher.tokenize(text_names).argmax(-1).max()) + 1
    dim = model.teacher.embed_dim
    for num in classes:
        text = F.normalize(torch.randn(num, dim, device=device), dim=-1)
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
    """FLOPs per image and the images/s bound at the peak throughput."""
    peak = args.peak_tflops * 1e12
    archs = [args.flops_arch]
    if bench is not None and args.arch not in archs:
        archs.append(args.arch)
    out: Dict[str, Any] = dict(peak_tflops=args.peak_tflops, archs={})
    for arch in archs:
        counts = count_flops(arch, args.classes, args.class_names)
        rows = []
        bounds = {}
        for num in args.classes:
            stored = counts['step_per_image'][str(num)]
            recompute = stored + counts['text_per_class'] * num / \
                args.batch_size
            bounds[str(num)] = dict(
                stored_gflops_per_image=stored / 1e9,
                recompute_gflops_per_image=recompute / 1e9,
                stored_bound_img_s=peak / stored,
                recompute_bound_img_s=peak / recompute)
            rows.append([
                num, stored / 1e9, recompute / 1e9, peak / stored,
                peak / recompute
            ])
        counts['bounds'] = bounds
        out['archs'][arch] = counts
        print_table(
            f'7. Roofline ({arch}): FLOPs per image and the images/s bound', [
                'classes', 'stored GFLOP/img', 'recompute GFLOP/img',
                'stored bound img/s', 'recompute bound img/s'
            ], rows, [
                f'peak {args.peak_tflops:g} TFLOP/s used for the bound '
                '(default: H200 dense bf16, no sparsity)',
                'per image: teacher forward '
                f'{counts["teacher_forward"] / 1e9:.3g} GFLOP, '
                'student forward+backward '
                f'{counts["student_forward_backward"] / 1e9:.3g} GFLOP, '
                'student inference '
                f'{counts["student_inference"] / 1e9:.3g} GFLOP; '
                'text encoder '
                f'{counts["text_per_class"] / 1e9:.3g} GFLOP per class '
                f'({counts["text_per_class_full"] / 1e9:.3g} over the whole '
                'context, '
                f'{counts["text_per_class_to_eot"] / 1e9:.3g} to the end '
                'token only, see section 8)',
                f'recompute adds text GFLOP/class x classes / batch '
                f'{args.batch_size}; counted with FlopCounterMode on '
                f'{counts["device"]}'
            ])
    # Measured throughput against the FLOPs of the measured arch.
    measured = out['archs'].get(args.arch)
    steps = results.get('train_step', {})
    if bench is not None and measured and steps:
        rows = []
        out['measured'] = {}
        on_gpu = bench.device.type == 'cuda' or args.peak_given
        for num, fig in steps.items():
            for mode in ('stored', 'recompute'):
                key = f'{mode}_gflops_per_image'
                gflops = measured['bounds'][num][key]
                img_s = fig[mode]['img_s']
                tflops = gflops * img_s / 1e3
                frac = tflops / args.peak_tflops if on_gpu else None
                out['measured'][f'{num}/{mode}'] = dict(
                    img_s=img_s, achieved_tflops=tflops, fraction_of_peak=frac)
                rows.append([
                    num, mode, img_s, tflops, f'{frac * 100:.2f}%'
                    if frac is not None else 'n/a (not a GPU run)'
                ])
        precision = results.get('precision', {})
        for name, fig in precision.items():
            if name == 'fp32':
                continue
            num = str(max(args.classes))
            gflops = measured['bounds'][num]['stored_gflops_per_image']
            img_s = fig['step']['img_s']
            tflops = gflops * img_s / 1e3
            frac = tflops / args.peak_tflops if on_gpu else None
            out['measured'][f'{num}/{name}'] = dict(
                img_s=img_s, achieved_tflops=tflops, fraction_of_peak=frac)
            rows.append([
                num, name, img_s, tflops, f'{frac * 100:.2f}%'
                if frac is not None else 'n/a (not a GPU run)'
            ])
        print_table(
            f'7b. Measured ({args.arch} on {bench.device}) vs the FLOPs',
            ['classes', 'step', 'img/s', 'achieved TFLOP/s', 'of peak'], rows,
            [
                'achieved = counted FLOPs per image x measured images/s',
                f'of peak: against {args.peak_tflops:g} TFLOP/s; fp32 steps '
                'run on a lower peak than bf16 / fp16 ones'
            ])
    return out
