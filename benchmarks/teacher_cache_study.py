"""HM and training time of the demo student with and without a teacher cache.

docs/teacher_cache_study.md; the other options are ``synthetic_b2n``'s."""
import argparse
import copy
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, Optional, Sequence

from benchmarks import synthetic_b2n as b2n
from benchmarks.common import markdown_table, write_json

#: Feature size of the tiny teacher (the cached runs build no teacher).
TINY_TEACHER_DIM = 96
ROW_NAMES = {
    'online': 'online (teacher at every step)',
    'cache_float32': 'cache float32, recorded views',
    'cache_float16_recorded': 'cache float16, recorded views',
    'cache_float16_random': "cache float16, views='random'",
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line: ``--topk``, then the benchmark's options."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     add_help=False)
    parser.add_argument('--topk', type=int, default=5,
                        help='logits kept by the top-k cache')
    own, rest = parser.parse_known_args(argv)
    args = b2n.parse_args(['--work-dir', 'work_dirs/teacher_cache_study'] +
                          list(rest))
    args.topk = own.topk
    return args


def cached_config(online_cfg, cache: str, views: str):
    """The online run's config, trained from ``cache`` without a teacher."""
    cfg = copy.deepcopy(online_cfg)
    cfg.model.teacher = None
    cfg.model.projector.out_channels = TINY_TEACHER_DIM
    cfg.train_dataloader.dataset = dict(
        _scope_='mmpromptkd', type='TeacherCachedDataset', cache=cache,
        views=views,
        dataset=copy.deepcopy(online_cfg.train_dataloader.dataset))
    return cfg


def run_study(args: argparse.Namespace) -> Dict[str, Dict[int, dict]]:
    """``{row: {seed: {'base', 'novel', 'hm', 'seconds'}}}``."""
    data = b2n.ensure_data(args)
    first = args.seeds[0]
    _, teacher = b2n.run_row('teacher_promptsrc', args, data, first,
                             evaluate=False)
    results: Dict[str, Dict[int, dict]] = {}

    def run(row: str, seed: int, cfg) -> None:
        # Seconds of the run (train and test), kept beside its results.
        timing = osp.join(args.work_dir, f'seed{seed}', row, 'seconds.json')
        start = time.time()
        metrics, _ = b2n.run_row('promptkd', args, data, seed, teacher,
                                 cfg=cfg, name=row)
        if not osp.isfile(timing):
            with open(timing, 'w') as f:
                json.dump(dict(seconds=time.time() - start), f)
        with open(timing) as f:
            seconds = json.load(f)['seconds']
        results.setdefault(row, {})[seed] = dict(metrics, seconds=seconds)

    online = {}
    for seed in args.seeds:
        online[seed] = b2n.build_row_config('promptkd', args, data, seed,
                                            teacher)
        run('online', seed, online[seed])
    caches = {}
    for storage in ('float32', 'float16', 'topk'):
        # Recorded once, from the first seed's online config.
        caches[storage] = osp.join(args.work_dir, 'caches', storage)
        if not osp.isdir(caches[storage]):
            os.makedirs(osp.dirname(caches[storage]), exist_ok=True)
            b2n._run('misc/cache_teacher_logits', [
                osp.join(args.work_dir, f'seed{first}', 'online',
                         'config.py'), '--out', caches[storage], '--epochs',
                str(online[first].train_cfg.max_epochs), '--storage',
                storage, *['--topk', str(args.topk)] * (storage == 'topk')
            ], osp.join(args.work_dir, 'caches', f'{storage}.log'))
    run('cache_float32', first,
        cached_config(online[first], caches['float32'], 'recorded'))
    run(f'cache_top{args.topk}', first,
        cached_config(online[first], caches['topk'], 'recorded'))
    for seed in args.seeds:
        for views in ('recorded', 'random'):
            run(f'cache_float16_{views}', seed,
                cached_config(online[seed], caches['float16'], views))
    return results


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the study; print and write the table."""
    args = parse_args(argv)
    start = time.time()
    results = run_study(args)
    rows = []
    for row, per_seed in results.items():
        stats = b2n.summarise({row: per_seed})[0][1]
        seconds = [r['seconds'] for r in per_seed.values()]
        rows.append([ROW_NAMES.get(row, f'cache top-{args.topk}, recorded '
                                   'views'),
                     ', '.join(map(str, sorted(per_seed))),
                     *b2n.mean_std_cells(stats),
                     f'{sum(seconds) / len(seconds):.0f}'])
    table = markdown_table(
        ['student trained', 'seeds', 'base', 'novel', 'HM', 's / run'], rows)
    print(table)
    write_json(args.out_json, {r: {str(s): v for s, v in d.items()}
                               for r, d in results.items()}, indent=1)
    if args.out_markdown:
        argv = sys.argv[1:] if argv is None else list(argv)
        b2n.write_report(
            args.out_markdown, 'The demo student with and without a '
            'teacher cache', argv, __file__, [
                f'{time.time() - start:.0f} s in all on this machine. One '
                f'PromptSRC teacher (seed {args.seeds[0]}); caches recorded '
                f'once with seed {args.seeds[0]} over the 20 epochs.', '',
                table, ''])
