"""How many unlabeled images distillation needs, on synthetic shapes.

See docs/unlabeled_data.md and docs/unlabeled_images_study.md."""
import argparse
import copy
import math
import os.path as osp
import sys
import time
from typing import Dict, Optional, Sequence, Tuple

from benchmarks import synthetic_b2n as b2n
from benchmarks.b2n.rows import set_epochs
from benchmarks.common import markdown_table, write_json
import synthetic_shapes


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (data and run options: synthetic_b2n)."""
    parser = b2n.data_parser(__doc__, 'work_dirs/unlabeled_study')
    parser.add_argument('--sizes', type=float, nargs='+',
                        default=(0.125, 0.25, 0.5, 1.0, 2.0, 4.0),
                        help='multiples of the train split: fractions <= 1 '
                        'subset it, larger values add generated images '
                        '(integers)')
    parser.add_argument('--no-control', dest='control', action='store_false',
                        help='leave out the runs at the steps of the 1x run')
    args = parser.parse_args(argv)
    for size in args.sizes:
        if size <= 0 or (size > 1 and size != int(size)):
            parser.error(f'--sizes: {size} is neither a fraction in (0, 1] '
                         'nor a whole multiple')
    return args


def study_config(size: float, args: argparse.Namespace, data: str,
                 extra: Optional[str], seed: int, teacher_ckpt: str):
    """The distillation config of one size (``extra``: added images)."""
    cfg = b2n.build_row_config('promptkd', args, data, seed, teacher_ckpt)
    split = copy.deepcopy(cfg.train_dataloader.dataset)
    if size <= 1:
        cfg.train_dataloader.dataset = dict(
            _scope_='mmpromptkd', type='NestedSubset', dataset=split,
            fraction=size, seed=seed)
        return cfg
    # The generator numbers the extra images index by index, so a prefix
    # holds as many of every class and grows with the size.
    multiple = int(size) - 1
    file_list = osp.join(extra, f'first_{multiple}x.txt')
    with open(file_list, 'w') as f:
        f.writelines(f'{n:06d}.png\n' for n in range(
            multiple * args.train_per_class * args.num_classes))
    cfg.train_dataloader.dataset = dict(
        _scope_='mmpromptkd', type='ConcatDataset', datasets=[
            split, dict(_scope_='mmpromptkd', type='UnlabeledImages',
                        data_root=osp.join(extra, 'images'),
                        file_list=file_list, pipeline=split['pipeline'])
        ], ignore_keys=['classes', 'num_base_classes', 'subset'])
    return cfg


def num_images(size: float, args: argparse.Namespace) -> int:
    """Unlabeled images of a size (per-class ceil for fractions)."""
    return math.ceil(size * args.train_per_class) * args.num_classes


def size_name(size: float) -> str:
    """``1/8``, ``1``, ``2x``, ..."""
    if size >= 1:
        return f'{int(size)}x' if size > 1 else '1'
    return f'1/{round(1 / size)}' if (1 / size).is_integer() else f'{size:g}'


def schedule(size: float, args: argparse.Namespace, cfg,
             control: bool) -> Tuple[int, int]:
    """``(epochs, optimizer steps)`` on ``size`` times the split; a
    ``control`` run takes the steps of the 1x run (epochs / size)."""
    epochs = cfg.train_cfg.max_epochs
    if control:
        epochs = max(1, round(epochs / size))
    loader, count = cfg.train_dataloader, num_images(size, args)
    per_epoch = (count // loader.batch_size if loader.get('drop_last')
                 else math.ceil(count / loader.batch_size))
    return epochs, epochs * per_epoch


def run_study(args: argparse.Namespace) -> Dict[str, Dict[float, dict]]:
    """``{'epochs' | 'steps': {size: {seed: metrics}}, 'schedule': {key:
    {size: (epochs, steps)}}}``: runs at the demo's epochs and (sizes other
    than 1) at the steps of the 1x run."""
    data = b2n.ensure_data(args)
    extra = None
    if max(args.sizes) > 1:
        # The images beyond the train split for the largest size.
        extra = osp.join(args.work_dir, f'extra_{int(max(args.sizes)) - 1}x')
        if not osp.isfile(osp.join(extra, 'classes.txt')):
            synthetic_shapes.generate_unlabeled_images(
                extra, num_classes=args.num_classes,
                per_class=(int(max(args.sizes)) - 1) * args.train_per_class,
                first_index=args.train_per_class)
    results = dict(epochs={s: {} for s in args.sizes},
                   steps={s: {} for s in args.sizes
                          if args.control and s != 1})
    plans = dict(epochs={}, steps={})
    for seed in args.seeds:
        print(f'== seed {seed}', flush=True)
        _, teacher_ckpt = b2n.run_row('teacher_promptsrc', args, data, seed,
                                      evaluate=False)
        for key, runs in results.items():
            for size in runs:
                cfg = study_config(size, args, data, extra, seed,
                                   teacher_ckpt)
                plans[key][size] = schedule(size, args, cfg, key == 'steps')
                set_epochs(cfg, plans[key][size][0])
                runs[size][seed], _ = b2n.run_row(
                    'promptkd', args, data, seed, teacher_ckpt, cfg=cfg,
                    name=f'images_{size:g}' + '_steps' * (key == 'steps'))
    results['schedule'] = plans
    return results


def equal_steps(summaries) -> list:
    """The control series with the 1x run, which has those steps too."""
    return sorted(summaries.get('steps', []) +
                  [row for row in summaries['epochs'] if row[0] == 1],
                  key=lambda row: row[0])


def write_png(summaries, args: argparse.Namespace, path: str) -> None:
    """HM, base and novel against the number of images (log scale)."""
    ax = b2n.new_axes((6.0, 4.2))
    series = [(summaries['epochs'], m, style, {'hm': 'HM'}.get(m, m))
              for m, style in (('hm', 'o-'), ('base', 's--'),
                               ('novel', '^--'))]
    if len(equal_steps(summaries)) > 1:
        series.append((equal_steps(summaries), 'hm', 'o:',
                       'HM, steps of 1x'))
    for summary, m, style, label in series:
        ax.errorbar([num_images(s, args) for s, _ in summary],
                    [st[m][0] for _, st in summary],
                    yerr=[st[m][1] for _, st in summary], fmt=style,
                    capsize=3, label=label,
                    linewidth=2 if style == 'o-' else 1)
    ax.axvline(args.train_per_class * args.num_classes, color='grey',
               alpha=0.4, linestyle=':')
    ax.set_xscale('log', base=2)
    counts = [num_images(size, args) for size, _ in summaries['epochs']]
    ax.set_xticks(counts)
    ax.set_xticklabels([f'{c}\n({size_name(s)})' for c, (s, _) in zip(
        counts, summaries['epochs'])], fontsize=7)
    ax.set_xlabel('unlabeled images (multiple of the train split)')
    b2n.save_figure(ax, path, 'PromptKD student on synthetic shapes, seeds '
                    f'{" ".join(map(str, args.seeds))} (mean ± std)')


def trend(summary) -> str:
    """Whether HM grows with the number of images, in words."""
    hms = [(size, stats['hm']) for size, stats in summary]
    (small, (lo, lo_std)), (large, (hi, hi_std)) = hms[0], hms[-1]
    margin = b2n.ordering_margin(lo_std, hi_std, 1)
    steps = [b[1][0] - a[1][0] for a, b in zip(hms, hms[1:])]
    verdict = ('grows' if hi - lo > margin else
               'falls' if lo - hi > margin else 'does not change beyond noise')
    return (f'From {size_name(small)} to {size_name(large)} of the train '
            f'split, HM {verdict} ({lo:.2f} -> {hi:.2f}, margin '
            f'{margin:.2f}); {sum(d > 0 for d in steps)} of {len(steps)} '
            'steps up.')


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the study and print (and write) the table."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    start = time.time()
    results = run_study(args)
    plans = results.pop('schedule')
    # Keyed by size instead of row: the benchmark's mean and sample std.
    summaries = {key: b2n.summarise(runs) for key, runs in results.items()}
    table = markdown_table(
        ['unlabeled images', 'count', 'epochs', 'steps', 'base', 'novel',
         'HM'],
        [[size_name(size) + label, num_images(size, args), *plans[key][size],
          *b2n.mean_std_cells(stats)]
         for key, label in (('epochs', ''), ('steps', ', steps of 1'))
         for size, stats in summaries.get(key, [])])
    trends = trend(summaries['epochs'])
    if len(equal_steps(summaries)) > 1:
        control = trend(equal_steps(summaries))
        trends += ' At the steps of the 1x run: ' + control[0].lower() + \
            control[1:]
    print(f'\nUnlabeled images for distillation, seeds {args.seeds} '
          f'(mean ± std), {time.time() - start:.0f} s\n')
    print(table)
    print(trends, flush=True)
    write_json(args.out_json, {
        key: {f'{s:g}': {str(k): v for k, v in r.items()}
              for s, r in runs.items()} for key, runs in results.items()} | {
        'schedule': {key: {f'{s:g}': list(p) for s, p in plan.items()}
                     for key, plan in plans.items()}})
    if args.out_png:
        write_png(summaries, args, args.out_png)
    if args.out_markdown:
        text = [
            f'Synthetic shapes, {args.num_classes} classes, '
            f'{args.train_per_class} train images per class (the 1x split, '
            f'{args.train_per_class * args.num_classes} images), '
            f'{args.test_per_class} test images per class; one stage-(a) '
            'PromptSRC teacher per seed; the student distilled for the '
            "demo's epochs on each set, and (rows 'steps of 1') for the "
            'optimizer steps of the 1x run. Accuracy (%) on the test split, '
            'mean ± sample std over seeds.', '', table, '', trends, ''
        ]
        if args.out_png:
            text += [f'![HM against the number of unlabeled images]'
                     f'({osp.basename(args.out_png)})', '']
        b2n.write_report(args.out_markdown,
                         'How many unlabeled images distillation needs',
                         argv, __file__, text)
