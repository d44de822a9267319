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
siglip_zs              zero-shot tiny SigLIP-style CLIP (a second family: timm
                       ViT tower with attention pooling, sigmoid loss)
siglip_promptsrc       stage (a): PromptSRC on the SigLIP-style CLIP
siglip_teacher         PromptKD, SigLIP-style teacher -> tiny student CLIP
siglip_student         PromptKD, tiny teacher CLIP -> SigLIP-style student
ensemble_equal         PromptKD, ensemble of the CLIP and SigLIP-style
                       stage-(a) teachers, equal weights -> tiny student CLIP
ensemble_confidence    the same, weights per image by confidence (max prob.)
ensemble_*_teacher     the ensemble's own scores on the test split (a
                       teacher's accuracy; nothing trained)
=====================  ======================================================

The ``siglip_*`` and ``ensemble_*`` rows run only when named
(docs/synthetic_b2n_cross_family.md has the command that made their table).

One dataset is generated (or reused) for all runs. Per seed, each stage-(a)
teacher is trained once and shared by all distillation rows it teaches. The
zero-shot rows train nothing and do not depend on the seed: they are
evaluated once and counted for every seed (std 0). A run whose
``results.json`` exists is skipped, so an interrupted benchmark resumes
where it stopped.

Example::

    python -m benchmarks synthetic_b2n \\
        --work-dir work_dirs/synthetic_b2n --seeds 1 2 3 \\
        --out-markdown docs/synthetic_b2n.md \\
        --out-png docs/synthetic_b2n.png --update-readme README.md
"""
import argparse
import contextlib
import datetime
import functools
import json
import os
import os.path as osp
import shlex
import shutil
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from benchmarks.b2n.report import (METRICS, MIN_MARGIN, README_BEGIN,
                                   README_END, check_orderings, command_line,
                                   format_table, markdown_table,
                                   mean_std_cells, ordering_margin,
                                   read_readme, summarise, update_readme,
                                   write_markdown, write_png)
from benchmarks.b2n.rows import (CROSS_FAMILY_ROWS, ROWS, STAGE_A_ROWS,
                                 build_row_config, set_epochs, stage_a_rows)
import synthetic_shapes
from tool_scripts import load_tool

# Used by the studies built on this benchmark.
__all__ = [
    'METRICS', 'MIN_MARGIN', 'ROWS', 'add_data_args', 'check_orderings',
    'command_line', 'ensure_data', 'main', 'markdown_table', 'mean_std_cells',
    'ordering_margin', 'run_benchmark', 'run_row',
    'set_epochs', 'summarise', 'write_markdown'
]


def add_data_args(parser: argparse.ArgumentParser, work_dir: str) -> None:
    """The options of the work dir, data, seeds, outputs and runs, shared
    by the studies built on this benchmark (the ``--*-per-class`` and
    epochs options shrink them for smoke tests)."""
    parser.add_argument('--work-dir', default=work_dir,
                        help='runs, generated configs and results go here')
    parser.add_argument('--data', default=None,
                        help='dataset folder (generated if missing); '
                        'defaults to <work-dir>/data')
    parser.add_argument('--seeds', type=int, nargs='+', default=[1, 2, 3])
    parser.add_argument('--out-markdown', help='write the table here (.md)')
    parser.add_argument('--out-png', help='write a chart here (.png)')
    parser.add_argument('--out-json', help='write all per-seed numbers here')
    parser.add_argument('--num-classes', type=int, default=40)
    parser.add_argument('--train-per-class', type=int, default=64)
    parser.add_argument('--val-per-class', type=int, default=10)
    parser.add_argument('--test-per-class', type=int, default=50)
    parser.add_argument('--shots', type=int, default=16,
                        help='labeled shots per base class (PromptSRC rows)')
    parser.add_argument('--teacher-epochs', type=int, default=None,
                        help='epochs of the PromptSRC rows (default: config)')
    parser.add_argument('--student-epochs', type=int, default=None,
                        help='epochs of the distillation rows '
                        '(default: config)')
    parser.add_argument('--random-weights', action='store_true',
                        help='do not load the pre-trained tiny CLIPs')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads; the tiny models gain little '
                        'from more, and shared cores suffer from them')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='extra key=value options for every run')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Base-to-novel benchmark of PromptKD on synthetic shapes')
    add_data_args(parser, 'work_dirs/synthetic_b2n')
    parser.add_argument(
        '--rows',
        nargs='+',
        default=[k for k in ROWS if k not in CROSS_FAMILY_ROWS],
        choices=list(ROWS),
        metavar='ROW',
        help=f'rows to run, of: {", ".join(ROWS)} (default: all but the '
        'cross-family rows siglip_*)')
    parser.add_argument(
        '--update-readme',
        metavar='FILE',
        help='replace the table between the markers '
        f'{README_BEGIN} and {README_END} in FILE (e.g. README.md)')
    return parser.parse_args(argv)


# Runs
@functools.lru_cache(maxsize=None)
def _tool(name: str):
    """Import ``tools/<name>.py`` as a module (once)."""
    return load_tool(f'{name}.py')


def _run(tool: str, tool_args: List[str], log_file: str) -> None:
    """Run ``tools/<tool>.py`` in this process (no start-up per run), its
    output into ``log_file``; RuntimeError if it fails."""
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
        teacher_ckpt (str | list[str], optional): Stage-(a) checkpoint
            (distill rows), one per member for an ensemble.
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
    trains = spec.kind != 'zero_shot' and not spec.teacher_scores
    ckpt = ('' if not trains else osp.join(
        run_dir, 'train', f'epoch_{cfg.train_cfg.max_epochs}.pth'))
    if osp.isfile(results):
        print(f'  {name or key} (seed {seed}): done, skipped', flush=True)
        return _load(results), ckpt
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
    stage_a = {
        row
        for k in args.rows if ROWS[k].kind == 'distill'
        for row in stage_a_rows(k)
    }
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
            if ROWS[key].kind == 'zero_shot' or key in teachers:
                continue
            needed = [teachers.get(row) for row in stage_a_rows(key)]
            results[key][seed], _ = run_row(
                key, args, data, seed,
                needed if ROWS[key].members else needed[0])
    return results


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the benchmark and print (and write) the table."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.update_readme:
        read_readme(args.update_readme)  # fail before the runs, not after
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
            json.dump({k: {str(s): v for s, v in r.items()}
                       for k, r in results.items()}, f, indent=2)
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


if __name__ == '__main__':
    main()
