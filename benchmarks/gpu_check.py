"""Real-size training on one accelerator: AMP speed, memory, loss tracking.

Exit status 1 when a loss leaves ``--tolerance``; docs/performance.md."""
import statistics
from typing import Any, Dict, Optional, Sequence

import torch

from benchmarks.cases.roofline import count_flops
from benchmarks.common import (DEFAULT_PEAK_TFLOPS, arg_parser,
                               build_distiller, class_names, distiller_cfg,
                               elapsed, make_optimizer, make_step,
                               print_table, quiet_mmengine, random_images,
                               set_classes, trained_state, write_json)


def parse_args(argv: Optional[Sequence[str]] = None):
    """Parse the command line."""
    parser = arg_parser(__doc__, device='cuda', arch='real', batch_size=256,
                        steps=20, warmup=3, classes=1000, seed=0, out=None)
    parser.add_argument('--peak-tflops', type=float,
                        default=DEFAULT_PEAK_TFLOPS)
    parser.add_argument('--tolerance', type=float, default=0.05,
                        help='largest relative loss difference from fp32 '
                        'allowed at any step')
    parser.add_argument('--init-scale', type=float, default=2.0**10,
                        help="fp16's initial loss scale (torch's 65536 "
                        'overflows the first steps of this loss, weighted '
                        'by 1000, which then are skipped)')
    args = parser.parse_args(argv)
    if args.warmup >= args.steps:
        parser.error('--warmup must be smaller than --steps')
    return args


def run_precision(model, pristine: Dict[str, torch.Tensor], batches,
                  precision: str, device: torch.device, warmup: int,
                  init_scale: float) -> Dict[str, Any]:
    """Train ``len(batches)`` steps from ``pristine`` in one precision."""
    model.load_state_dict(pristine, strict=False)
    model.train()
    optimizer = make_optimizer(model)
    dtype = dict(bf16=torch.bfloat16, fp16=torch.float16).get(precision)
    scaler = (torch.amp.GradScaler(device.type, init_scale=init_scale)
              if precision == 'fp16' else None)
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    losses, same_weights, times, skipped = [], [], [], 0
    for inputs in batches:
        if dtype is not None:
            # The fp32 loss of the same weights and batch, not timed.
            with torch.no_grad():
                same_weights.append(
                    float(model(inputs, mode='loss')['loss_kd']))
        scale = scaler.get_scale() if scaler is not None else 0
        step = make_step(model, optimizer, inputs, amp_dtype=dtype,
                         scaler=scaler)
        times.append(elapsed(step, device))
        skipped += int(scaler is not None and scaler.get_scale() < scale)
        losses.append(float(step.last_loss))
    step_s = statistics.median(times[warmup:])
    out = dict(losses=losses, fp32_losses_same_weights=same_weights or losses,
               step_ms=step_s * 1e3, img_s=len(batches[0]) / step_s,
               skipped_steps=skipped)
    if device.type == 'cuda':
        out['peak_memory_gib'] = torch.cuda.max_memory_allocated(
            device) / 2**30
    return out


def _max_rel_diff(values: Sequence[float],
                  reference: Sequence[float]) -> float:
    return max(
        abs(a - b) / max(abs(b), 1e-12) for a, b in zip(values, reference))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the three precisions; print the table; check the losses."""
    args = parse_args(argv)
    device = torch.device(args.device)
    quiet_mmengine()
    if device.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 is fp32
    model = build_distiller(distiller_cfg(args.arch), device, args.seed)
    set_classes(model, class_names(args.classes))
    pristine = trained_state(model)
    batches = random_images(args.batch_size * args.steps,
                            model.student.image_size, args.seed,
                            device).split(args.batch_size)
    flops = count_flops(args.arch, [args.classes])
    step_flops = flops['step_per_image'][str(args.classes)] * args.batch_size
    figures: Dict[str, Any] = dict(
        device=(torch.cuda.get_device_name(device)
                if device.type == 'cuda' else 'cpu'),
        arch=args.arch, batch_size=args.batch_size, steps=args.steps,
        classes=args.classes, step_gflop=step_flops / 1e9,
        peak_tflops=args.peak_tflops, tolerance=args.tolerance)
    rows, failed = [], []
    for precision in ('fp32', 'bf16', 'fp16'):
        fig = figures[precision] = run_precision(
            model, pristine, batches, precision, device, args.warmup,
            args.init_scale)
        fig['tflops'] = step_flops / (fig['step_ms'] / 1e3) / 1e12
        fig['of_peak'] = fig['tflops'] / args.peak_tflops
        # The check: each step's loss against the fp32 loss of the same
        # weights. Reported too: the trajectory against the fp32 run's.
        fig['max_rel_loss_diff'] = _max_rel_diff(
            fig['losses'], fig['fp32_losses_same_weights'])
        fig['max_rel_trajectory_diff'] = _max_rel_diff(
            fig['losses'], figures['fp32']['losses'])
        finite = all(abs(v) < float('inf') for v in fig['losses'])
        if not finite or fig['max_rel_loss_diff'] > args.tolerance:
            failed.append(precision)
        rows.append([
            precision, fig['img_s'], fig['step_ms'],
            fig.get('peak_memory_gib', '-'), fig['tflops'],
            f'{100 * fig["of_peak"]:.1f} %', fig['max_rel_loss_diff'],
            fig['max_rel_trajectory_diff'], fig['skipped_steps']
        ])
    print_table(
        f'Real-size check: {figures["device"]}, {args.arch}, batch '
        f'{args.batch_size}, {args.steps} steps', [
            'precision', 'img/s', 'step ms', 'peak GiB', 'TFLOP/s',
            'of peak', 'max rel loss diff', 'vs fp32 run', 'skipped (fp16)'
        ], rows, [
            f'{figures["step_gflop"]:,.0f} GFLOP per step (forward of the '
            'teacher, forward + backward of the student); peak '
            f'{args.peak_tflops:g} TFLOP/s',
            f'loss diff: each of the {args.steps} steps against the fp32 '
            f'loss of the same weights and batch (tolerance '
            f'{args.tolerance:g}); vs fp32 run: against the losses of the '
            'fp32 run on the same batches (reported, not checked: rounding '
            'and skipped fp16 steps let trajectories part)'
        ])
    figures['passed'] = not failed
    write_json(args.out, figures)
    if failed:
        print(f'FAILED: {", ".join(failed)} losses leave the tolerance')
        return 1
    print('passed: every precision tracks fp32 within the tolerance')
    return 0
