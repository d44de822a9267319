"""Measure the speed, memory and scaling of PromptKD training and inference.

Figures are measured side by side; docs/performance.md has the cases."""
import argparse
import os
import platform
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import torch

from benchmarks.cases.data import bench_data, bench_sources
from benchmarks.cases.inference import bench_inference, bench_onnx
from benchmarks.cases.roofline import bench_roofline
from benchmarks.cases.training import (bench_compile, bench_ideas,
                                       bench_memory, bench_overhead,
                                       bench_precision, bench_teacher_cache,
                                       bench_train_step)
from benchmarks.common import (ARCHS, DEFAULT_PEAK_TFLOPS, Bench,
                               arg_parser, quiet_mmengine, write_json)

#: The cases by name, in the order of their numbers (``--sections 1``...).
CASES = dict(train_step=bench_train_step, overhead=bench_overhead,
             inference=bench_inference, data=bench_data, memory=bench_memory,
             precision=bench_precision, roofline=bench_roofline,
             ideas=bench_ideas, onnx=bench_onnx, sources=bench_sources,
             teacher_cache=bench_teacher_cache, compile=bench_compile)
SECTIONS = tuple(CASES)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (see docs/performance.md, "Options")."""
    parser = arg_parser(__doc__, arch=None, device=None, batch_size=8,
                        iters=10, warmup=2, threads=0, out=None, seed=0)
    add = parser.add_argument
    add('--flops-arch', choices=ARCHS, default='real')
    add('--infer-batch-size', type=int)
    add('--classes', type=int, nargs='+', default=[100, 1000])
    add('--class-names', choices=('imagenet', 'synthetic'),
        default='imagenet')
    add('--sections', nargs='+', default=list(SECTIONS),
        help=f'subset of {", ".join(SECTIONS)} (or 1-{len(SECTIONS)})')
    add('--workers', type=int, default=min(8, os.cpu_count() or 1))
    add('--num-images', type=int, default=64)
    add('--peak-tflops', type=float,
        help=f'default {DEFAULT_PEAK_TFLOPS:g}, H200 dense bf16')
    args = parser.parse_args(argv)
    sections = set()
    for name in ','.join(args.sections).split(','):
        name = name.strip()
        if name.isdigit() and 1 <= int(name) <= len(SECTIONS):
            name = SECTIONS[int(name) - 1]
        if name not in SECTIONS:
            parser.error(f'unknown section {name!r}; choose from '
                         f'{SECTIONS} or 1-{len(SECTIONS)}')
        sections.add(name)
    args.sections = [s for s in SECTIONS if s in sections]
    if args.device is None:
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.arch is None:
        args.arch = 'real' if args.device.startswith('cuda') else 'tiny'
    args.peak_given = args.peak_tflops is not None
    args.peak_tflops = args.peak_tflops or DEFAULT_PEAK_TFLOPS
    if args.iters < 1 or args.warmup < 0 or args.batch_size < 2:
        parser.error('need --iters >= 1, --warmup >= 0 and --batch-size >= '
                     '2 (the projector BatchNorm trains on the batch)')
    if 'data' in args.sections and args.warmup < 1:
        parser.error('the data section needs --warmup >= 1')
    args.classes = sorted(set(args.classes))
    return args


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load_average() -> Optional[List[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Run the selected cases, print their tables, write the JSON."""
    args = parse_args(argv)
    device = torch.device(args.device)
    if not args.threads:
        # Torch's choice, capped at the idle CPUs (docs: "--threads").
        from mmpromptkd.utils import choose_cpu_threads
        args.threads = (choose_cpu_threads() if device.type == 'cpu' else
                        torch.get_num_threads())
    torch.set_num_threads(args.threads)
    quiet_mmengine()
    env = dict(
        command=' '.join(['python -m benchmarks speed'] +
                         list(sys.argv[1:] if argv is None else argv)),
        device=str(device),
        device_name=(torch.cuda.get_device_name(device)
                     if device.type == 'cuda' else _cpu_name()),
        cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
        float32_matmul_precision=torch.get_float32_matmul_precision(),
        python=platform.python_version(),
        # Other processes share the CPUs of small machines: say how busy.
        load_average_start=_load_average())
    for key in ('arch', 'flops_arch', 'batch_size', 'iters', 'warmup',
                'classes', 'class_names', 'sections', 'workers',
                'num_images', 'seed', 'threads'):
        env[key] = getattr(args, key)
    print('PromptKD benchmark: ' + ', '.join(
        f'{k}={env[k]}' for k in ('device', 'device_name', 'cpu_count',
                                  'torch_threads', 'load_average_start',
                                  'arch', 'batch_size', 'iters', 'warmup',
                                  'classes')))
    results: Dict[str, Any] = dict(environment=env, section_s={})
    bench = None
    if args.sections != ['roofline']:
        start = time.perf_counter()
        bench = Bench(args)
        bench.results = results
        results['build_s'] = time.perf_counter() - start
    for section in args.sections:
        start = time.perf_counter()
        results[section] = (bench_roofline(bench, args, results)
                            if section == 'roofline' else
                            CASES[section](bench))
        results['section_s'][section] = time.perf_counter() - start
    env['load_average_end'] = _load_average()
    print(f'\nload average (1, 5, 15 min): start {env["load_average_start"]}, '
          f'end {env["load_average_end"]}; total '
          f'{sum(results["section_s"].values()):.0f} s')
    if args.out:
        write_json(args.out, results)
        print(f'\nFigures written to {args.out}')
    return results
