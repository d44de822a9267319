"""Base-to-novel benchmark of PromptKD and its ablations on synthetic shapes.

Every row is a real run of ``tools/train.py`` / ``tools/test.py`` (called
in this process, one after the other) on the tiny CLIPs of the offline
demo; the script prints one table of base / novel / HM accuracy (mean ±
std over seeds) and can write it as Markdown and as a bar chart.

Rows (``--rows`` takes a subset, by key):

=====================  ======================================================
key                    run
=====================  ======================================================
student_zs             zero-shot tiny student CLIP, "a photo of a {}."
teacher_zs             zero-shot tiny teacher CLIP, "a photo of a {}."
teacher_promptsrc      stage (a): PromptSRC on the teacher, 16 base shots
student_labels         PromptSRC on the student, 16 base shots (labels)
promptkd               PromptKD student (stage b), unlabeled images
projector_only         PromptKD, student without prompts (projector only)
full_finetune          PromptKD, whole student image encoder trained
wo_shared_text         PromptKD, student's own prompted text encoder
feature_l1             PromptKD, L1 on image features instead of logit KL
feature_mse            PromptKD, MSE on image features instead of logit KL
=====================  ======================================================

One dataset is generated (or reused) for all runs. Per seed, the stage-(a)
teacher is trained once and shared by all distillation rows. The zero-shot
rows train nothing and do not depend on the seed: they are evaluated once
and counted for every seed (std 0). A run whose ``results.json`` exists is
skipped, so an interrupted benchmark resumes where it stopped.

Example::

    python -m benchmarks synthetic_b2n \\
        --work-dir work_dirs/synthetic_b2n --seeds 1 2 3 \\
        --out-markdown docs/synthetic_b2n.md \\
        --out-png docs/synthetic_b2n.png --update-readme README.md
"""
import argparse
import contextlib
import copy
import datetime
import importlib.util
import json
import math
import os
import os.path as osp
import shlex
import shutil
import statistics
import sys
import time
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from mmpromptkd.datasets import synthetic_shapes

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

TEACHER_CONFIG = osp.join(
    REPO_ROOT, 'configs', 'promptsrc',
    'promptsrc_tiny-clip_1xb32-16shot-5e_b2n-synthetic-shapes.py')
DISTILLER_CONFIG = osp.join(
    REPO_ROOT, 'configs', 'promptkd',
    'promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py')
TEMPLATE = 'a photo of a {}.'
METRICS = ('base', 'novel', 'hm')
# Where --update-readme puts the table.
README_BEGIN = '<!-- synthetic-b2n-table:begin -->'
README_END = '<!-- synthetic-b2n-table:end -->'


class RowSpec(NamedTuple):
    """How one row of the table is produced.

    Attributes:
        label (str): Row name in the table.
        kind (str): ``'zero_shot'``, ``'promptsrc'`` or ``'distill'``.
        overrides (dict): Merged into the row's base config.
    """
    label: str
    kind: str
    overrides: dict


def _feature_distillation(mode: str) -> dict:
    """Config changes of a feature-distillation row (L1 or MSE)."""
    return dict(
        model=dict(
            distill_target='features',
            distill_loss=dict(
                _delete_=True,
                type='FeatureDistillLoss',
                mode=mode,
                loss_weight=1000.0)))


ROWS: Dict[str, RowSpec] = {
    'student_zs':
    RowSpec('Student zero-shot CLIP', 'zero_shot', dict(which='student')),
    'teacher_zs':
    RowSpec('Teacher zero-shot CLIP', 'zero_shot', dict(which='teacher')),
    'teacher_promptsrc':
    RowSpec('Teacher PromptSRC (stage a)', 'promptsrc', dict(which='teacher')),
    'student_labels':
    RowSpec('Student PromptSRC with labels', 'promptsrc',
            dict(which='student')),
    'promptkd':
    RowSpec('PromptKD student', 'distill', {}),
    'projector_only':
    RowSpec('PromptKD: projector only', 'distill',
            dict(model=dict(student=dict(vision_prompt_depth=0)))),
    'full_finetune':
    RowSpec(
        'PromptKD: full fine-tune', 'distill',
        dict(
            model=dict(
                student=dict(vision_prompt_depth=0, freeze_clip=False)))),
    'wo_shared_text':
    RowSpec(
        'PromptKD: w/o shared text features', 'distill',
        dict(
            model=dict(
                student=dict(text_prompt_depth=3, text_prompt_length=4),
                shared_text_features=False,
                projector=None))),
    'feature_l1':
    RowSpec('PromptKD: feature L1', 'distill', _feature_distillation('l1')),
    'feature_mse':
    RowSpec('PromptKD: feature MSE', 'distill', _feature_distillation('mse')),
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): Arguments; defaults to
            ``sys.argv[1:]``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Base-to-novel benchmark of PromptKD on synthetic shapes')
    parser.add_argument(
        '--work-dir',
        default='work_dirs/synthetic_b2n',
        help='runs, generated configs and results go here')
    parser.add_argument(
        '--data',
        default=None,
        help='dataset folder (generated if missing); '
        'defaults to <work-dir>/data')
    parser.add_argument('--seeds', type=int, nargs='+', default=[1, 2, 3])
    parser.add_argument(
        '--rows',
        nargs='+',
        default=list(ROWS),
        choices=list(ROWS),
        metavar='ROW',
        help=f'rows to run, of: {", ".join(ROWS)}')
    parser.add_argument('--out-markdown', help='write the table here (.md)')
    parser.add_argument('--out-png', help='write a bar chart here (.png)')
    parser.add_argument('--out-json', help='write all per-seed numbers here')
    parser.add_argument(
        '--update-readme',
        metavar='FILE',
        help='replace the table between the markers '
        f'{README_BEGIN} and {README_END} in FILE (e.g. README.md)')
    # Shrinking, for smoke tests.
    parser.add_argument('--num-classes', type=int, default=40)
    parser.add_argument('--train-per-class', type=int, default=64)
    parser.add_argument('--val-per-class', type=int, default=10)
    parser.add_argument('--test-per-class', type=int, default=50)
    parser.add_argument(
        '--shots',
        type=int,
        default=16,
        help='labeled shots per base class (PromptSRC rows)')
    parser.add_argument(
        '--teacher-epochs',
        type=int,
        default=None,
        help='epochs of the PromptSRC rows (default: config)')
    parser.add_argument(
        '--student-epochs',
        type=int,
        default=None,
        help='epochs of the distillation rows '
        '(default: config)')
    parser.add_argument(
        '--random-weights',
        action='store_true',
        help='do not load the pre-trained tiny CLIPs')
    parser.add_argument(
        '--threads',
        type=int,
        default=1,
        help='torch CPU threads; the tiny models gain little '
        'from more, and shared cores suffer from them')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='extra key=value options for every run')
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------
# Configs
# ----------------------------------------------------------------------------
def _gpa_hooks(hooks: List[dict], max_epochs: int) -> List[dict]:
    """Move the aggregation's peak to the last-but-one epoch, as configured.

    The tiny configs put the Gaussian's mean one epoch before the end; keep
    that when the number of epochs is changed.
    """
    hooks = copy.deepcopy(hooks)
    for hook in hooks:
        if hook.get('type') == 'GaussianPromptAggregationHook':
            hook['mean'] = float(max(max_epochs - 1, 1))
    return hooks


def set_epochs(cfg, max_epochs: int) -> None:
    """Set the epochs of a config's schedule (warm-up epoch + cosine)."""
    cfg.train_cfg.max_epochs = max_epochs
    if cfg.get('default_hooks', {}).get('checkpoint'):
        # Only the last checkpoint is needed.
        cfg.default_hooks.checkpoint.interval = max_epochs
    for sched in cfg.param_scheduler:
        if sched['type'] == 'CosineAnnealingLR':
            sched['T_max'] = max_epochs
            # Dassl's cosine starts after the warm-up epoch (begin=1).
            sched['end'] = sched.get('begin', 0) + max_epochs
    cfg.custom_hooks = _gpa_hooks(cfg.custom_hooks, max_epochs)


def _common(cfg, args: argparse.Namespace, data: str, seed: int) -> None:
    """Data, seed and run-time settings shared by every run."""
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = data
    cfg.randomness = dict(seed=seed, deterministic=False)
    # No validation during training (not even after the last epoch): only
    # the final test is reported.
    cfg.train_cfg.val_begin = 10**6
    cfg.train_cfg.val_interval = 10**6
    # Only the last checkpoint is needed.
    cfg.default_hooks.checkpoint.interval = cfg.train_cfg.max_epochs
    cfg.default_hooks.logger.interval = 50


def _clip_checkpoint(base, which: str, random_weights: bool) -> Optional[str]:
    if random_weights:
        return None
    return osp.normpath(base[f'tiny_{which}_clip_checkpoint'])


def build_row_config(key: str,
                     args: argparse.Namespace,
                     data: str,
                     seed: int,
                     teacher_ckpt: Optional[str] = None):
    """The full config of one run.

    Args:
        key (str): Row key.
        args (argparse.Namespace): Command-line arguments.
        data (str): Dataset folder.
        seed (int): Random seed (also the few-shot sampling seed).
        teacher_ckpt (str, optional): Stage-(a) checkpoint (distill rows).

    Returns:
        mmengine.Config: The config.
    """
    from mmengine.config import Config, DictAction

    spec = ROWS[key]
    teacher_cfg = Config.fromfile(TEACHER_CONFIG)
    base = Config.fromfile(DISTILLER_CONFIG)  # holds the tiny CLIP dicts
    if spec.kind in ('zero_shot', 'promptsrc'):
        cfg = teacher_cfg
        which = spec.overrides['which']
        clip = dict(
            model_cfg=copy.deepcopy(base[f'tiny_{which}_clip']),
            quick_gelu=True,
            checkpoint=_clip_checkpoint(base, which, args.random_weights))
        if spec.kind == 'zero_shot':
            cfg.model = dict(
                type='ZeroShotCLIPClassifier',
                _scope_='mmpromptkd',
                clip=clip,
                template=TEMPLATE)
        else:
            cfg.model.clip = clip
            cfg.train_dataloader.dataset.num_shots = args.shots
            cfg.train_dataloader.dataset.seed = seed
            if args.teacher_epochs is not None:
                set_epochs(cfg, args.teacher_epochs)
    else:
        cfg = base
        for which in ('student', 'teacher'):
            cfg.model[which].clip.checkpoint = _clip_checkpoint(
                base, which, args.random_weights)
        cfg.model.teacher.checkpoint = teacher_ckpt
        cfg.merge_from_dict(copy.deepcopy(spec.overrides))
        if args.student_epochs is not None:
            set_epochs(cfg, args.student_epochs)
    _common(cfg, args, data, seed)
    if args.cfg_options:
        options = argparse.Namespace()
        DictAction(
            option_strings=[], dest='o')(None, options, args.cfg_options)
        cfg.merge_from_dict(options.o)
    return cfg


# ----------------------------------------------------------------------------
# Runs
# ----------------------------------------------------------------------------
def _tool(name: str):
    """Import ``tools/<name>.py`` as a module (once)."""
    if name not in _TOOLS:
        spec = importlib.util.spec_from_file_location(
            f'_benchmark_tool_{name}',
            osp.join(REPO_ROOT, 'tools', f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _TOOLS[name] = module
    return _TOOLS[name]


_TOOLS: dict = {}


def _run(tool: str, tool_args: List[str], log_file: str) -> None:
    """Run ``tools/<tool>.py`` in this process; its output goes to a log.

    In-process runs save the start-up of a Python process with torch,
    mmengine and mmpretrain per run, which dominates the tiny runs on CPU.

    Args:
        tool (str): ``'train'`` or ``'test'``.
        tool_args (list[str]): Its command line.
        log_file (str): Where its output goes.

    Raises:
        RuntimeError: If the tool fails.
    """
    start = time.time()
    with open(log_file, 'a') as log:
        log.write(f'$ python tools/{tool}.py ' +
                  ' '.join(shlex.quote(a) for a in tool_args) + '\n')
        log.flush()
        try:
            with contextlib.redirect_stdout(log), \
                    contextlib.redirect_stderr(log):
                _tool(tool).main(tool_args)
        except (Exception, SystemExit) as e:
            raise RuntimeError(f'tools/{tool}.py failed ({e!r}), see '
                               f'{log_file}') from e
    print(f'    {tool}: {time.time() - start:.0f} s', flush=True)


def run_row(key: str,
            args: argparse.Namespace,
            data: str,
            seed: int,
            teacher_ckpt: Optional[str] = None,
            evaluate: bool = True,
            cfg=None,
            name: Optional[str] = None) -> Tuple[Optional[dict], str]:
    """Train (if needed) and test one row for one seed.

    Args:
        key (str): Row key.
        args (argparse.Namespace): Command-line arguments.
        data (str): Dataset folder.
        seed (int): Random seed.
        teacher_ckpt (str, optional): Stage-(a) checkpoint (distill rows).
        evaluate (bool): Test the trained model. Defaults to True.
        cfg (mmengine.Config, optional): The run's config, when a caller
            changed that of ``key`` (:func:`build_row_config`). Defaults to
            None.
        name (str, optional): Folder of the run under the seed's folder.
            Defaults to None (``key``).

    Returns:
        tuple[dict | None, str]: Metrics of ``results.json`` (None when not
        evaluated) and the last checkpoint (``''`` for zero-shot rows).
    """
    spec = ROWS[key]
    run_dir = (
        osp.join(args.work_dir, 'zero_shot', key) if spec.kind == 'zero_shot'
        else osp.join(args.work_dir, f'seed{seed}', name or key))
    os.makedirs(run_dir, exist_ok=True)
    results = osp.join(run_dir, 'results.json')
    if cfg is None:
        cfg = build_row_config(key, args, data, seed, teacher_ckpt)
    ckpt = ('' if spec.kind == 'zero_shot' else osp.join(
        run_dir, 'train', f'epoch_{cfg.train_cfg.max_epochs}.pth'))
    if osp.isfile(results):
        print(f'  {name or key} (seed {seed}): done, skipped', flush=True)
        return _load(results), ckpt
    print(f'  {name or key} (seed {seed})', flush=True)
    config_file = osp.join(run_dir, 'config.py')
    cfg.dump(config_file)
    log_file = osp.join(run_dir, 'run.log')
    if spec.kind != 'zero_shot' and not osp.isfile(ckpt):
        # A run stopped half-way leaves checkpoints that tools/train.py
        # refuses to overwrite: start it again from scratch.
        shutil.rmtree(osp.join(run_dir, 'train'), ignore_errors=True)
        _run('train', [config_file, '--work-dir',
                       osp.join(run_dir, 'train')], log_file)
    if not evaluate:
        return None, ckpt
    test_args = [config_file] + ([ckpt] if ckpt else [])
    _run(
        'test', test_args +
        ['--work-dir',
         osp.join(run_dir, 'test'), '--out', results], log_file)
    return _load(results), ckpt


def _load(path: str) -> dict:
    with open(path) as f:
        metrics = json.load(f)
    return {m: float(metrics[f'b2n/{m}']) for m in METRICS}


def ensure_data(args: argparse.Namespace) -> str:
    """Generate the dataset unless a finished one is there.

    Returns:
        str: Absolute dataset folder.
    """
    data = osp.abspath(args.data or osp.join(args.work_dir, 'data'))
    if not osp.isfile(osp.join(data, 'split_shapes.json')):
        # What tools/misc/generate_shapes_dataset.py writes, in-process.
        synthetic_shapes.generate_coop_dataset(
            data,
            num_classes=args.num_classes,
            train_per_class=args.train_per_class,
            val_per_class=args.val_per_class,
            test_per_class=args.test_per_class)
    return data


def run_benchmark(args: argparse.Namespace) -> Dict[str, Dict[int, dict]]:
    """All requested rows for all seeds.

    Returns:
        dict: ``{row: {seed: {'base', 'novel', 'hm'}}}``.
    """
    args.work_dir = osp.abspath(args.work_dir)
    os.makedirs(args.work_dir, exist_ok=True)
    data = ensure_data(args)
    results: Dict[str, Dict[int, dict]] = {k: {} for k in args.rows}
    distill = [k for k in args.rows if ROWS[k].kind == 'distill']
    for key in args.rows:
        if ROWS[key].kind == 'zero_shot':
            metrics, _ = run_row(key, args, data, args.seeds[0])
            results[key] = {s: metrics for s in args.seeds}
    for seed in args.seeds:
        print(f'== seed {seed}', flush=True)
        teacher_ckpt = None
        if 'teacher_promptsrc' in args.rows or distill:
            metrics, teacher_ckpt = run_row(
                'teacher_promptsrc',
                args,
                data,
                seed,
                evaluate='teacher_promptsrc' in args.rows)
            if 'teacher_promptsrc' in args.rows:
                results['teacher_promptsrc'][seed] = metrics
        for key in args.rows:
            if ROWS[key].kind == 'zero_shot' or key == 'teacher_promptsrc':
                continue
            results[key][seed], _ = run_row(key, args, data, seed,
                                            teacher_ckpt)
    return results


# ----------------------------------------------------------------------------
# Table and chart
# ----------------------------------------------------------------------------
def summarise(
    results: Dict[str, Dict[int, dict]]
) -> List[Tuple[str, Dict[str, Tuple[float, float]]]]:
    """Mean and sample std (ddof=1; 0 for one seed) of every metric.

    Returns:
        list: ``[(row key, {metric: (mean, std)})]`` in row order.
    """
    rows = []
    for key, per_seed in results.items():
        if not per_seed:
            continue
        stats = {}
        for m in METRICS:
            values = [r[m] for r in per_seed.values()]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            stats[m] = (statistics.fmean(values), std)
        rows.append((key, stats))
    return rows


def format_table(summary, num_seeds: int) -> str:
    """A Markdown table of the summary."""
    lines = [
        '| method | base | novel | HM |',
        '|---|---|---|---|',
    ]
    for key, stats in summary:
        cells = [f'{stats[m][0]:.2f} ± {stats[m][1]:.2f}' for m in METRICS]
        lines.append(f'| {ROWS[key].label} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_png(summary, path: str, title: str) -> None:
    """Grouped bar chart (base / novel / HM) with std error bars."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    labels = [ROWS[k].label for k, _ in summary]
    x = np.arange(len(labels))
    width = 0.27
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(labels) + 2), 4.8))
    for i, m in enumerate(METRICS):
        means = [s[m][0] for _, s in summary]
        stds = [s[m][1] for _, s in summary]
        ax.bar(
            x + (i - 1) * width,
            means,
            width,
            yerr=stds,
            capsize=2,
            label={'hm': 'HM'}.get(m, m))
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=35, ha='right', fontsize=8)
    ax.set_ylabel('accuracy (%)')
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
)
# Smallest HM difference counted as an ordering: about twice the binomial
# std of an HM measured on 1,000 + 1,000 test images (the default split).
MIN_MARGIN = 2.0
NOTES_MARKER = '<!-- notes: kept when the file is generated again -->'


def ordering_margin(std_better: float, std_worse: float,
                    num_seeds: int) -> float:
    """HM difference needed before an ordering counts as reproduced.

    Twice the standard error of the difference of two means over
    ``num_seeds`` seeds, ``2 * sqrt((s1^2 + s2^2) / n)``, and at least
    ``MIN_MARGIN`` (test-set sampling noise, which the seeds do not vary).

    Args:
        std_better (float): Sample std of one row's HM over seeds.
        std_worse (float): Sample std of the other row's HM.
        num_seeds (int): Number of seeds behind each mean.

    Returns:
        float: The margin in HM points.
    """
    standard_error = math.sqrt(
        (std_better**2 + std_worse**2) / max(num_seeds, 1))
    return max(2.0 * standard_error, MIN_MARGIN)


def check_orderings(summary, num_seeds: int) -> List[str]:
    """Markdown lines: which of the paper's HM orderings hold here.

    An ordering counts as reproduced when the mean HM difference exceeds
    :func:`ordering_margin`, reversed when it is below minus the margin.

    Args:
        summary (list): ``(row key, {metric: (mean, std)})`` pairs.
        num_seeds (int): Number of seeds behind each mean.

    Returns:
        list[str]: Table lines (empty when no ordering's rows ran).
    """
    stats = dict(summary)
    lines = []
    for better, worse, what in PAPER_ORDERINGS:
        if better not in stats or worse not in stats:
            continue
        (hm_b, std_b), (hm_w, std_w) = stats[better]['hm'], \
            stats[worse]['hm']
        diff = hm_b - hm_w
        margin = ordering_margin(std_b, std_w, num_seeds)
        verdict = ('yes' if diff > margin else
                   'no (reversed)' if diff < -margin else 'within noise')
        lines.append(f'| {what} | {diff:+.2f} | {margin:.2f} | {verdict} |')
    if lines:
        lines = [
            '| paper ordering (HM) | difference | margin | '
            'reproduced |', '|---|---|---|---|'
        ] + lines
    return lines


def command_line(argv: Sequence[str], script: str = __file__) -> str:
    """The command of the study ``script`` through the entry point."""
    name = osp.splitext(osp.basename(script))[0]
    return ' '.join(['python -m benchmarks', name] +
                    [shlex.quote(a) for a in argv])


def write_markdown(path: str, lines: List[str]) -> None:
    """Write generated Markdown lines, keeping what was written by hand
    below :data:`NOTES_MARKER` in an earlier version of the file."""
    notes = [NOTES_MARKER, '']
    if osp.isfile(path):
        with open(path) as f:
            old = f.read()
        if NOTES_MARKER in old:
            notes = [old[old.index(NOTES_MARKER):].rstrip('\n'), '']
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(lines + notes))


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the benchmark and print (and write) the table.

    Args:
        argv (Sequence[str], optional): Arguments; defaults to
            ``sys.argv[1:]``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.update_readme:
        _read_readme(args.update_readme)  # fail before the runs, not after
    import torch
    torch.set_num_threads(args.threads)
    start = time.time()
    results = run_benchmark(args)
    summary = summarise(results)
    table = format_table(summary, len(args.seeds))
    print(f'\nSynthetic shapes base-to-novel, seeds {args.seeds} '
          f'(mean ± std), {time.time() - start:.0f} s\n')
    print(table, flush=True)
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(
                {
                    k: {
                        str(s): v
                        for s, v in r.items()
                    }
                    for k, r in results.items()
                },
                f,
                indent=2)
    if args.out_png:
        write_png(
            summary, args.out_png,
            f'Synthetic shapes base-to-novel, tiny CLIPs, '
            f'seeds {" ".join(map(str, args.seeds))} (mean ± std)')
    if args.out_markdown:
        weights = ('random weights' if args.random_weights else
                   'pre-trained tiny CLIPs (checkpoints/tiny_clip)')
        text = [
            '# Synthetic shapes base-to-novel benchmark', '',
            f'Generated on {datetime.date.today().isoformat()} by:', '',
            '```bash',
            command_line(argv), '```', '',
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
        write_markdown(args.out_markdown, text)
    if args.update_readme:
        update_readme(args.update_readme, table, argv)


def _read_readme(path: str) -> Tuple[str, int, int]:
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
    """Replace the benchmark table between the markers of a Markdown file.

    Args:
        path (str): The file, e.g. ``README.md``; must contain
            ``README_BEGIN`` followed by ``README_END``.
        table (str): The Markdown table.
        argv (Sequence[str]): The benchmark's arguments, quoted above it.
    """
    text, begin, end = _read_readme(path)
    block = '\n'.join([
        README_BEGIN, f'<!-- generated by: {command_line(argv)} -->', '',
        table, '', README_END
    ])
    with open(path, 'w') as f:
        f.write(text[:begin] + block + text[end:])


if __name__ == '__main__':
    main()
