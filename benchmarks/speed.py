"""Measure the speed, memory and scaling of PromptKD training and inference.

Every figure is measured in one run, side by side with the figure it is
compared with, and printed as a small table with the ratio. Each case
(``--sections``: train_step, overhead, inference, data, memory, precision,
roofline, ideas, onnx, sources, teacher_cache, compile) is a module of
``benchmarks/cases/``; docs/performance.md describes what each measures.
Models have random weights: nothing is downloaded.

Example::

    python -m benchmarks speed --out work_dirs/bench.json
    python -m benchmarks speed --arch real --device cuda \\
        --batch-size 32 --sections train_step precision roofline
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

# Run from a source checkout without installing the package; the cases are
# the package ``benchmarks`` beside this script.
import torch

from benchmarks.common import (
    ARCHS, DEFAULT_PEAK_TFLOPS, SECTIONS, Bench)
from benchmarks.cases.data import bench_data
from benchmarks.cases.compiled import bench_compile
from benchmarks.cases.ideas import bench_ideas
from benchmarks.cases.inference import bench_inference
from benchmarks.cases.memory import bench_memory
from benchmarks.cases.onnx_runtime import bench_onnx
from benchmarks.cases.overhead import bench_overhead
from benchmarks.cases.precision import bench_precision
from benchmarks.cases.roofline import bench_roofline
from benchmarks.cases.sources import bench_sources
from benchmarks.cases.teacher_cache import bench_teacher_cache
from benchmarks.cases.train_step import bench_train_step


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Measure PromptKD speed, memory and scaling.')
    parser.add_argument(
        '--arch', choices=ARCHS, default=None,
        help='architecture of the measured sections: tiny (random small '
        'CLIPs, 64 px), base (ViT-B/16 teacher, ViT-S/16 student, 112 px) or '
        'real (ViT-L/14 teacher, ViT-B/16 student, 224 px). Default: real '
        'on CUDA, tiny on CPU')
    parser.add_argument(
        '--flops-arch', choices=ARCHS, default='real',
        help='architecture whose FLOPs the roofline section counts (the '
        'measured arch is counted too)')
    parser.add_argument(
        '--device', default=None,
        help='device, e.g. cpu or cuda:0. Default: cuda if available')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument(
        '--infer-batch-size', type=int, default=None,
        help='batch size of the inference section (default: --batch-size)')
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument(
        '--classes', type=int, nargs='+', default=[100, 1000],
        help='class counts of the step comparison; the other sections use '
        'the largest')
    parser.add_argument(
        '--class-names', choices=('imagenet', 'synthetic'),
        default='imagenet',
        help='class names (their token lengths set the cost of the text '
        'run to the end token): ImageNet\'s, or "synthetic object {i}"')
    parser.add_argument(
        '--sections', nargs='+', default=list(SECTIONS),
        help=f'subset of {", ".join(SECTIONS)} (or their numbers 1-'
        f'{len(SECTIONS)})')
    parser.add_argument(
        '--workers', type=int, default=min(8, os.cpu_count() or 1),
        help='DataLoader workers of the data section')
    parser.add_argument(
        '--num-images', type=int, default=64,
        help='JPEGs written for the data section')
    parser.add_argument(
        '--peak-tflops', type=float, default=None,
        help=f'peak throughput of the roofline bound (default '
        f'{DEFAULT_PEAK_TFLOPS:g}, H200 dense bf16)')
    parser.add_argument(
        '--threads', type=int, default=0,
        help='torch CPU threads; 0 (default) keeps torch\'s choice unless '
        'other processes keep the CPUs busy, then uses only the idle ones '
        '(at least 1): a descheduled thread stalls its peers at every op')
    parser.add_argument('--out', default=None, help='JSON file of figures')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)

    sections = []
    for item in args.sections:
        for name in item.split(','):
            name = name.strip()
            if name.isdigit() and 1 <= int(name) <= len(SECTIONS):
                name = SECTIONS[int(name) - 1]
            if name not in SECTIONS:
                parser.error(f'unknown section {name!r}; choose from '
                             f'{SECTIONS} or 1-{len(SECTIONS)}')
            if name not in sections:
                sections.append(name)
    args.sections = [s for s in SECTIONS if s in sections]
    if args.device is None:
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.arch is None:
        args.arch = 'real' if args.device.startswith('cuda') else 'tiny'
    args.peak_given = args.peak_tflops is not None
    if args.peak_tflops is None:
        args.peak_tflops = DEFAULT_PEAK_TFLOPS
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


def auto_threads(device: torch.device) -> int:
    """Torch threads for a CPU run: torch's choice, capped at idle CPUs.

    With more busy threads than CPUs, each op waits for its slowest thread
    (8x slower tiny training steps with 2 threads than with 1, measured on
    2 CPUs at a load average of 3).
    """
    threads = torch.get_num_threads()
    load = _load_average()
    if device.type != 'cpu' or not load:
        return threads
    idle = (os.cpu_count() or 1) - load[0]
    return max(1, min(threads, int(idle + 0.5)))


def environment(args: argparse.Namespace,
                argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """What the figures were measured on, and the command line."""
    device = torch.device(args.device)
    argv = sys.argv[1:] if argv is None else list(argv)
    env = dict(
        command=' '.join(['python -m benchmarks speed'] + argv),
        device=str(device),
        device_name=(torch.cuda.get_device_name(device)
                     if device.type == 'cuda' else _cpu_name()),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
        float32_matmul_precision=torch.get_float32_matmul_precision(),
        python=platform.python_version(),
        # Other processes share the CPUs of small machines: say how busy.
        load_average_start=_load_average())
    for key in ('arch', 'flops_arch', 'batch_size', 'iters', 'warmup',
                'classes', 'class_names', 'sections', 'workers',
                'num_images', 'seed', 'threads'):
        env[key] = getattr(args, key)
    return env


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Run the selected sections, print their tables, write the JSON."""
    args = parse_args(argv)
    args.threads = args.threads or auto_threads(torch.device(args.device))
    torch.set_num_threads(args.threads)
    import mmpromptkd  # noqa: F401  (registers the components)
    from mmengine.logging import MMLogger

    # Keep the tables readable: library INFO lines (e.g. "stored text
    # features") would repeat on every class count.
    MMLogger.get_instance('mmengine').setLevel('WARNING')
    env = environment(args, argv)
    print('PromptKD benchmark: ' + ', '.join(
        f'{k}={env[k]}' for k in ('device', 'device_name', 'cpu_count',
                                  'torch_threads', 'load_average_start',
                                  'arch', 'batch_size', 'iters', 'warmup',
                                  'classes')))
    results: Dict[str, Any] = dict(environment=env)
    measured = [s for s in args.sections if s != 'roofline']
    bench = None
    if measured:
        start = time.perf_counter()
        bench = Bench(args)
        bench.results = results
        results['build_s'] = time.perf_counter() - start
    runners = dict(
        train_step=bench_train_step, overhead=bench_overhead,
        inference=bench_inference, data=bench_data, memory=bench_memory,
        precision=bench_precision, ideas=bench_ideas, onnx=bench_onnx,
        sources=bench_sources, teacher_cache=bench_teacher_cache,
        compile=bench_compile)
    for section in args.sections:
        start = time.perf_counter()
        if section == 'roofline':
            results[section] = bench_roofline(bench, args, results)
        else:
            results[section] = runners[section](bench)
        results.setdefault('section_s', {})[section] = \
            time.perf_counter() - start
    env['load_average_end'] = _load_average()
    print(f'\nload average (1, 5, 15 min): start {env["load_average_start"]}, '
          f'end {env["load_average_end"]}; total '
          f'{sum(results.get("section_s", {}).values()):.0f} s')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
        print(f'\nFigures written to {args.out}')
    return results


if __name__ == '__main__':
    main()
