"""Base-to-novel benchmark of PromptKD and its ablations on synthetic shapes.

Finished runs are skipped (resumable); docs/synthetic_b2n.md."""
import argparse
import contextlib
import datetime
import functools
import json
import math
import os
import os.path as osp
import shlex
import shutil
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from benchmarks.b2n.rows import (CROSS_FAMILY_ROWS, ROWS, STAGE_A_ROWS,
                                 build_row_config, stage_a_rows)
from benchmarks.common import arg_parser, markdown_table, write_json
import synthetic_shapes
from tool_scripts import load_tool

METRICS = ('base', 'novel', 'hm')
# Where --update-readme puts the table.
README_BEGIN = '<!-- synthetic-b2n-table:begin -->'
README_END = '<!-- synthetic-b2n-table:end -->'
NOTES_MARKER = '<!-- notes: kept when the file is generated again -->'
# Smallest HM difference counted as an ordering: about twice the binomial
# std of an HM measured on 1,000 + 1,000 test images (the default split).
MIN_MARGIN = 2.0
# Orderings of HM reported in the paper (ImageNet ablations, Tab. 6-7):
# (better row, worse row, what it shows).
PAPER_ORDERINGS = (
    ('promptkd', 'student_zs', 'distilled student > zero-shot student'),
    ('promptkd', 'student_labels',
     'distilled student > student trained with labels'),
    ('promptkd', 'feature_l1', 'logit KL > feature L1'),
    ('promptkd', 'feature_mse', 'logit KL > feature MSE'),
    ('promptkd', 'wo_shared_text',
     "shared teacher text features > student's own text encoder"),
    ('promptkd', 'projector_only', 'prompts + projector > projector only'),
    ('promptkd', 'full_finetune', 'prompts + projector > full fine-tune'),
    ('teacher_promptsrc', 'promptkd', 'teacher > its student'),
    # The same premises across CLIP families.
    ('siglip_teacher', 'student_zs',
     'distilled student > zero-shot student (SigLIP-style teacher)'),
    ('siglip_student', 'siglip_zs',
     'distilled student > zero-shot student (SigLIP-style student)'),
    ('siglip_promptsrc', 'siglip_teacher',
     'teacher > its student (SigLIP-style teacher)'),
    ('teacher_promptsrc', 'siglip_student',
     'teacher > its student (SigLIP-style student)'),
)


def data_parser(doc: str, work_dir: str) -> argparse.ArgumentParser:
    """A parser with the work dir, data, seed, output and run options."""
    parser = arg_parser(doc)
    add = parser.add_argument
    add('--work-dir', default=work_dir,
        help='runs, generated configs and results go here')
    add('--data', help='dataset folder (generated if missing); default: '
        '<work-dir>/data')
    add('--seeds', type=int, nargs='+', default=[1, 2, 3])
    add('--out-markdown', help='write the table here (.md)')
    add('--out-png', help='write a chart here (.png)')
    add('--out-json', help='write all per-seed numbers here')
    for name, default in (('num-classes', 40), ('train-per-class', 64),
                          ('val-per-class', 10), ('test-per-class', 50)):
        add(f'--{name}', type=int, default=default)
    add('--shots', type=int, default=16,
        help='labeled shots per base class (PromptSRC rows)')
    add('--teacher-epochs', type=int,
        help='epochs of the PromptSRC rows (default: config)')
    add('--student-epochs', type=int,
        help='epochs of the distillation rows (default: config)')
    add('--random-weights', action='store_true',
        help='do not load the pre-trained tiny CLIPs')
    add('--threads', type=int, default=1,
        help='torch CPU threads; the tiny models gain little from more, '
        'and shared cores suffer from them')
    add('--cfg-options', nargs='+', default=[],
        help='extra key=value options for every run')
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = data_parser(__doc__, 'work_dirs/synthetic_b2n')
    parser.add_argument(
        '--rows', nargs='+', choices=list(ROWS), metavar='ROW',
        default=[k for k in ROWS if k not in CROSS_FAMILY_ROWS],
        help=f'rows to run, of: {", ".join(ROWS)} (default: all but the '
        'cross-family rows)')
    parser.add_argument(
        '--update-readme', metavar='FILE',
        help=f'replace the table between {README_BEGIN} and {README_END} '
        'in FILE')
    return parser.parse_args(argv)


_tool = functools.lru_cache(maxsize=None)(load_tool)


def _run(tool: str, tool_args: List[str], log_file: str) -> None:
    """Run ``tools/<tool>.py`` in this process, its output to ``log_file``."""
    start = time.time()
    with open(log_file, 'a') as log:
        log.write(f'$ python tools/{tool}.py {shlex.join(tool_args)}\n')
        log.flush()
        try:
            with contextlib.redirect_stdout(log), \
                    contextlib.redirect_stderr(log):
                _tool(f'{tool}.py').main(tool_args)
        except (Exception, SystemExit) as e:
            raise RuntimeError(f'tools/{tool}.py failed ({e!r}), see '
                               f'{log_file}') from e
    print(f'    {tool}: {time.time() - start:.0f} s', flush=True)


def run_row(key: str, args: argparse.Namespace, data: str, seed: int,
            teacher_ckpt=None, evaluate: bool = True, cfg=None,
            name: Optional[str] = None) -> Tuple[Optional[dict], str]:
    """Train (if needed) and test row ``key`` for one seed.

    Args:
        teacher_ckpt (str | list[str], optional): Stage-(a) checkpoint(s).
        cfg (mmengine.Config, optional): The run's config, if not ``key``'s.
        name (str, optional): Folder of the run in the seed's (``key``).

    Returns:
        tuple[dict | None, str]: Metrics (None when not evaluated) and the
        last checkpoint (``''`` for zero-shot rows).
    """
    spec = ROWS[key]
    run_dir = (osp.join(args.work_dir, 'zero_shot', key)
               if spec.kind == 'zero_shot' else
               osp.join(args.work_dir, f'seed{seed}', name or key))
    os.makedirs(run_dir, exist_ok=True)
    results = osp.join(run_dir, 'results.json')
    if cfg is None:
        cfg = build_row_config(key, args, data, seed, teacher_ckpt)
    trains = spec.kind != 'zero_shot' and not spec.teacher_scores
    ckpt = osp.join(run_dir, 'train',
                    f'epoch_{cfg.train_cfg.max_epochs}.pth') if trains else ''
    if not osp.isfile(results):
        print(f'  {name or key} (seed {seed})', flush=True)
        config_file = osp.join(run_dir, 'config.py')
        cfg.dump(config_file)
        log_file = osp.join(run_dir, 'run.log')
        if trains and not osp.isfile(ckpt):
            # A run stopped half-way leaves checkpoints that tools/train.py
            # refuses to overwrite: start it again from scratch.
            shutil.rmtree(osp.join(run_dir, 'train'), ignore_errors=True)
            _run('train', [config_file, '--work-dir',
                           osp.join(run_dir, 'train')], log_file)
        if not evaluate:
            return None, ckpt
        _run('test', [config_file] + [ckpt] * trains +
             ['--work-dir', osp.join(run_dir, 'test'), '--out', results],
             log_file)
    else:
        print(f'  {name or key} (seed {seed}): done, skipped', flush=True)
    with open(results) as f:
        metrics = json.load(f)
    return {m: float(metrics[f'b2n/{m}']) for m in METRICS}, ckpt


def ensure_data(args: argparse.Namespace) -> str:
    """Set threads and an absolute work dir; the (generated) data folder."""
    import torch
    torch.set_num_threads(args.threads)
    args.work_dir = osp.abspath(args.work_dir)
    os.makedirs(args.work_dir, exist_ok=True)
    data = osp.abspath(args.data or osp.join(args.work_dir, 'data'))
    if not osp.isfile(osp.join(data, 'split_shapes.json')):
        synthetic_shapes.generate_coop_dataset(
            data, num_classes=args.num_classes,
            train_per_class=args.train_per_class,
            val_per_class=args.val_per_class,
            test_per_class=args.test_per_class)
    return data


def run_benchmark(args: argparse.Namespace) -> Dict[str, Dict[int, dict]]:
    """``{row: {seed: {'base', 'novel', 'hm'}}}`` of the requested rows."""
    data = ensure_data(args)
    results: Dict[str, Dict[int, dict]] = {k: {} for k in args.rows}
    stage_a = {row for k in args.rows if ROWS[k].kind == 'distill'
               for row in stage_a_rows(k)}
    for key in args.rows:
        if ROWS[key].kind == 'zero_shot':
            metrics, _ = run_row(key, args, data, args.seeds[0])
            results[key] = {s: metrics for s in args.seeds}
    for seed in args.seeds:
        print(f'== seed {seed}', flush=True)
        teachers = {}
        for key in STAGE_A_ROWS:
            if key in args.rows or key in stage_a:
                metrics, teachers[key] = run_row(
                    key, args, data, seed, evaluate=key in args.rows)
                if key in args.rows:
                    results[key][seed] = metrics
        for key in args.rows:
            if ROWS[key].kind != 'zero_shot' and key not in teachers:
                needed = [teachers.get(row) for row in stage_a_rows(key)]
                results[key][seed], _ = run_row(
                    key, args, data, seed,
                    needed if ROWS[key].members else needed[0])
    return results


def summarise(results: Dict[str, Dict[int, dict]]) -> list:
    """``[(row key, {metric: (mean, sample std or 0)})]`` in row order."""
    return [(key, {m: (statistics.fmean(r[m] for r in per_seed.values()),
                       statistics.stdev(r[m] for r in per_seed.values())
                       if len(per_seed) > 1 else 0.0) for m in METRICS})
            for key, per_seed in results.items() if per_seed]


def mean_std_cells(stats: Dict[str, Tuple[float, float]]) -> List[str]:
    """``mean ± std`` of base, novel and HM, as table cells."""
    return [f'{stats[m][0]:.2f} ± {stats[m][1]:.2f}' for m in METRICS]


def write_png(summary, path: str, title: str) -> None:
    """Grouped bar chart (base / novel / HM) with std error bars."""
    import numpy as np

    labels = [ROWS[k].label for k, _ in summary]
    x = np.arange(len(labels))
    ax = new_axes((max(6.0, 1.1 * len(labels) + 2), 4.8))
    for i, m in enumerate(METRICS):
        ax.bar(x + (i - 1) * 0.27, [s[m][0] for _, s in summary], 0.27,
               yerr=[s[m][1] for _, s in summary], capsize=2,
               label={'hm': 'HM'}.get(m, m))
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=35, ha='right', fontsize=8)
    ax.set_ylim(0, 100)
    save_figure(ax, path, title, axis='y')


def new_axes(size: Tuple[float, float]):
    """The axes of a new matplotlib figure (no display needed)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt.subplots(figsize=size)[1]


def save_figure(ax, path: str, title: str, **grid) -> None:
    """Label, title, grid and legend an accuracy chart; save it (120 dpi)."""
    import matplotlib.pyplot as plt
    ax.set_ylabel('accuracy (%)')
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, **grid)
    ax.figure.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    ax.figure.savefig(path, dpi=120)
    plt.close(ax.figure)


def ordering_margin(std_better: float, std_worse: float,
                    num_seeds: int) -> float:
    """HM difference an ordering needs: ``2 * sqrt((s1^2 + s2^2) / n)``,
    at least ``MIN_MARGIN`` (test-set noise, which seeds do not vary)."""
    return max(2.0 * math.sqrt((std_better**2 + std_worse**2) /
                               max(num_seeds, 1)), MIN_MARGIN)


def check_orderings(summary, num_seeds: int) -> List[str]:
    """Markdown table lines: which of the paper's HM orderings hold here."""
    stats = dict(summary)
    lines = []
    for better, worse, what in PAPER_ORDERINGS:
        if better in stats and worse in stats:
            (hm_b, std_b), (hm_w, std_w) = stats[better]['hm'], \
                stats[worse]['hm']
            diff, margin = hm_b - hm_w, ordering_margin(std_b, std_w,
                                                        num_seeds)
            verdict = ('yes' if diff > margin else
                       'no (reversed)' if diff < -margin else 'within noise')
            lines.append(
                f'| {what} | {diff:+.2f} | {margin:.2f} | {verdict} |')
    return ['| paper ordering (HM) | difference | margin | reproduced |',
            '|---|---|---|---|'] + lines if lines else []


def command_line(argv: Sequence[str],
                 script: str = 'synthetic_b2n.py') -> str:
    """The command of the study ``script`` through the entry point."""
    name = osp.splitext(osp.basename(script))[0]
    return f'python -m benchmarks {name} {shlex.join(argv)}'.rstrip()


def write_report(path: str, title: str, argv: Sequence[str], script: str,
                 lines: List[str]) -> None:
    """Write ``lines`` under ``title`` and the command; keep the notes."""
    lines = [f'# {title}', '', f'Generated on {datetime.date.today()} by:',
             '', '```bash', command_line(argv, script), '```', '', *lines]
    notes = [NOTES_MARKER, '']
    if osp.isfile(path):
        with open(path) as f:
            old = f.read()
        if NOTES_MARKER in old:
            notes = [old[old.index(NOTES_MARKER):].rstrip('\n'), '']
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(lines + notes))


def read_readme(path: str) -> Tuple[str, int, int]:
    """Text of a Markdown file and the span of its benchmark table markers."""
    with open(path) as f:
        text = f.read()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(
            f'{path}: expected the markers {README_BEGIN} and then '
            f'{README_END} around the table to replace')
    return text, begin, end + len(README_END)


def update_readme(path: str, table: str, argv: Sequence[str]) -> None:
    """Replace the table between the markers of ``path`` by ``table``."""
    text, begin, end = read_readme(path)
    block = '\n'.join([
        README_BEGIN, f'<!-- generated by: {command_line(argv)} -->', '',
        table, '', README_END
    ])
    with open(path, 'w') as f:
        f.write(text[:begin] + block + text[end:])


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the benchmark and print (and write) the table."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.update_readme:
        read_readme(args.update_readme)  # fail before the runs, not after
    start = time.time()
    results = run_benchmark(args)
    summary = summarise(results)
    table = markdown_table(['method', 'base', 'novel', 'HM'],
                           [[ROWS[key].label, *mean_std_cells(stats)]
                            for key, stats in summary])
    title = f'Synthetic shapes base-to-novel, seeds {args.seeds} (mean ± std)'
    print(f'\n{title}, {time.time() - start:.0f} s\n')
    print(table, flush=True)
    write_json(args.out_json, {k: {str(s): v for s, v in r.items()}
                               for k, r in results.items()})
    if args.out_png:
        write_png(summary, args.out_png, 'Synthetic shapes base-to-novel, '
                  f'tiny CLIPs, seeds {" ".join(map(str, args.seeds))} '
                  '(mean ± std)')
    if args.out_markdown:
        weights = ('random weights' if args.random_weights else
                   'pre-trained tiny CLIPs (checkpoints/tiny_clip)')
        text = [
            f'Seeds {args.seeds}; {args.num_classes} classes, '
            f'{args.train_per_class} / {args.val_per_class} / '
            f'{args.test_per_class} train / val / test images per class; '
            f'{weights}. Accuracy (%) on the test split, mean ± sample '
            'std over seeds; zero-shot rows do not depend on the seed.', '',
            table, ''
        ]
        orderings = check_orderings(summary, len(args.seeds))
        if orderings:
            text += [
                '## Orderings of the paper', '',
                'Reproduced when the HM difference exceeds the margin: twice '
                'the standard error of the difference of the two means over '
                f'seeds, and at least {MIN_MARGIN} (test-set sampling noise, '
                'which the seeds do not vary).', ''
            ] + orderings + ['']
        write_report(args.out_markdown,
                     'Synthetic shapes base-to-novel benchmark', argv,
                     __file__, text)
    if args.update_readme:
        update_readme(args.update_readme, table, argv)
