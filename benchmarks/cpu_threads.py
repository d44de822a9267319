"""Step time of the tiny demo pair with 1 and 2 torch threads, idle and busy.

``--demo-epochs N``: also the demo's distillation; docs/performance.md."""
import os.path as osp
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, Optional, Sequence

import torch

from benchmarks.common import (REPO_ROOT, arg_parser, build_distiller,
                               class_names, make_optimizer, make_step,
                               print_table, set_classes, time_interleaved)

COMPETITOR = '''
import sys, torch
torch.set_num_threads(int(sys.argv[1]))
a = torch.randn(384, 384)
print('ready', flush=True)
while True:
    a = (a @ a).tanh()
'''


def time_demo(args, threads: str) -> float:
    """Seconds of a demo distillation run (a fresh ``tools/train.py``)."""
    with tempfile.TemporaryDirectory() as work_dir:
        start = time.perf_counter()
        subprocess.run([
            sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'),
            osp.join(REPO_ROOT, 'configs', 'promptkd',
                     'promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py'),
            '--work-dir', work_dir, '--cfg-options',
            f'train_cfg.max_epochs={args.demo_epochs}',
            'train_cfg.val_interval=1000',
            f'default_hooks.checkpoint.interval={args.demo_epochs}',
            f'custom_hooks.0.threads={threads}',
            *(f'{split}_dataloader.dataset.data_root={args.data_root}'
              for split in ('train', 'val', 'test'))
        ], check=True, capture_output=True, cwd=REPO_ROOT)
        return time.perf_counter() - start


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Measure idle, then with a competing job; print the tables."""
    from mmengine.config import Config

    from mmpromptkd.utils import choose_cpu_threads

    parser = arg_parser(__doc__, iters=30, warmup=3, batch_size=32)
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--competitor-threads', type=int, default=2)
    parser.add_argument('--demo-epochs', type=int, default=0,
                        help='also time the demo distillation (0: do not)')
    parser.add_argument('--data-root', default='data/synthetic_shapes',
                        help='the demo dataset (tools/run_demo.sh makes it)')
    args = parser.parse_args(argv)
    default = torch.get_num_threads()
    # The demo's distiller (pre-trained tiny CLIPs), 40 classes stored;
    # its teacher prompts are untrained: only the step's cost is timed.
    model = build_distiller(dict(Config.fromfile(osp.join(
        REPO_ROOT, 'configs', '_base_', 'models',
        'promptkd_tiny-clip.py')).model, allow_untrained_teacher=True),
        torch.device('cpu'), 0)
    set_classes(model, class_names(40, 'synthetic'))
    inputs = torch.randn(args.batch_size, 3, 32, 32,
                         generator=torch.Generator().manual_seed(0))
    step = make_step(model, make_optimizer(model), inputs)
    fns = {n: lambda n=n: (torch.set_num_threads(n), step())
           for n in args.threads}
    figures, rows = {}, []
    first, last = args.threads[0], args.threads[-1]
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
            timed = time_interleaved(fns, args.iters, args.warmup,
                                     torch.device('cpu'))
            ms = {n: timed[n]['median_ms'] for n in args.threads}
            demo = {t: time_demo(args, t) for t in ('auto', '2')
                    } if args.demo_epochs else {}
        finally:
            if competitor is not None:
                competitor.kill()
                competitor.wait()
        figures[condition] = dict(step_ms=ms, auto_threads=chosen,
                                  demo_s=demo)
        rows.append([condition, *ms.values(),
                     f'{ms[last] / ms[first]:.2f}x', chosen])
    torch.set_num_threads(default)
    print_table(
        'Tiny demo step: torch threads, idle and with one competing job',
        ['machine'] + [f'{n} thread(s) ms' for n in args.threads] +
        [f'{last} / {first}', 'auto picks'], rows, [
            f'batch {args.batch_size}, 32 px, 40 classes; forward + '
            'backward + SGD; median of interleaved rounds',
            f'competing job: a torch process on '
            f'{args.competitor_threads} thread(s) multiplying matrices'
        ])
    if args.demo_epochs:
        print_table(
            f'Demo distillation ({args.demo_epochs} epochs, tools/train.py): '
            'seconds', ['machine', "threads='auto'", 'threads=2', 'ratio'],
            [[c, f['demo_s']['auto'], f['demo_s']['2'],
              f"{f['demo_s']['2'] / f['demo_s']['auto']:.2f}x"]
             for c, f in figures.items()],
            ['a fresh process per run, start-up and the test-free loop '
             'included; ratio = threads=2 / auto'])
    return figures
