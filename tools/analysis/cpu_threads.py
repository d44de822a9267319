"""Step time of the tiny demo pair with 1 and 2 torch threads, idle and busy.

A training step of the offline demo (tiny teacher and student of
``configs/_base_/models/promptkd_tiny-clip.py``, batch 32, 32 px, 40
classes) is timed with each thread count, the counts interleaved round by
round, first on an idle machine, then while one competing job runs (another
torch process multiplying matrices on ``--competitor-threads`` threads, as a
second training job would). The thread count that
:func:`mmpromptkd.utils.choose_cpu_threads` picks is printed for each
condition.

Example::

    python tools/analysis/cpu_threads.py --iters 30
"""
import argparse
import os.path as osp
import subprocess
import sys
import time
from typing import Any, Dict, Optional, Sequence

_HERE = osp.dirname(osp.abspath(__file__))
REPO_ROOT = osp.dirname(osp.dirname(_HERE))
for _path in (REPO_ROOT, _HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import torch  # noqa: E402

from benchmarks.common import (class_names, make_optimizer,  # noqa: E402
                               make_step, print_table)

MODEL_CONFIG = osp.join(REPO_ROOT, 'configs', '_base_', 'models',
                        'promptkd_tiny-clip.py')
COMPETITOR = '''
import sys, torch
torch.set_num_threads(int(sys.argv[1]))
a = torch.randn(384, 384)
print('ready', flush=True)
while True:
    a = (a @ a).tanh()
'''


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Tiny demo step time with 1 and 2 threads, idle and '
        'with one competing job')
    parser.add_argument('--iters', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--competitor-threads', type=int, default=2)
    return parser.parse_args(argv)


def build_demo_pair():
    """The demo's distiller (pre-trained tiny CLIPs), 40 classes stored."""
    from mmengine.config import Config

    import mmpromptkd  # noqa: F401
    from mmpromptkd.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(MODEL_CONFIG).model).train()
    model.prepare_text_features(class_names(40, 'synthetic'), True)
    return model


def time_threads(model, inputs: torch.Tensor, threads: Sequence[int],
                 iters: int, warmup: int) -> Dict[int, float]:
    """Median step ms per thread count, the counts interleaved."""
    step = make_step(model, make_optimizer(model), inputs)
    times: Dict[int, list] = {n: [] for n in threads}
    for n in threads:
        torch.set_num_threads(n)
        for _ in range(warmup):
            step()
    for i in range(iters):
        for j in range(len(threads)):
            n = threads[(i + j) % len(threads)]
            torch.set_num_threads(n)
            start = time.perf_counter()
            step()
            times[n].append(time.perf_counter() - start)
    return {n: sorted(t)[len(t) // 2] * 1e3 for n, t in times.items()}


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Measure idle, then with a competing job; print the table."""
    from mmpromptkd.utils import choose_cpu_threads

    args = parse_args(argv)
    default = torch.get_num_threads()
    model = build_demo_pair()
    inputs = torch.randn(args.batch_size, 3, 32, 32,
                         generator=torch.Generator().manual_seed(0))
    figures, rows = {}, []
    for condition in ('idle', 'one competing job'):
        competitor = None
        if condition != 'idle':
            competitor = subprocess.Popen(
                [sys.executable, '-c', COMPETITOR,
                 str(args.competitor_threads)],
                stdout=subprocess.PIPE, text=True)
            competitor.stdout.readline()  # 'ready'
            time.sleep(5)  # let the load average see it
        try:
            torch.set_num_threads(default)
            chosen = choose_cpu_threads(model)
            ms = time_threads(model, inputs, args.threads, args.iters,
                              args.warmup)
        finally:
            if competitor is not None:
                competitor.kill()
                competitor.wait()
        figures[condition] = dict(step_ms=ms, auto_threads=chosen)
        rows.append([condition] + [ms[n] for n in args.threads] +
                    [f'{ms[args.threads[-1]] / ms[args.threads[0]]:.2f}x',
                     chosen])
    torch.set_num_threads(default)
    print_table(
        'Tiny demo step: torch threads, idle and with one competing job',
        ['machine'] + [f'{n} thread(s) ms' for n in args.threads] +
        [f'{args.threads[-1]} / {args.threads[0]}', 'auto picks'], rows, [
            f'batch {args.batch_size}, 32 px, 40 classes; forward + '
            'backward + SGD; median of interleaved rounds',
            f'competing job: a torch process on '
            f'{args.competitor_threads} thread(s) multiplying matrices'
        ])
    return figures


if __name__ == '__main__':
    main()
