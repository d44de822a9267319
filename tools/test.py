"""Test a checkpoint with an mmpromptkd config (mmpretrain's command line);
prints the base-to-novel table, ``--out`` writes the flat metrics (.json)
that ``tools/analysis/aggregate_results.py`` reads, or the predictions."""
import argparse
import math
import numbers
import os
import os.path as osp
import sys
import warnings
from typing import Dict, Optional

# This checkout, even where another copy is installed.
_REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
_TOOLS_MISC = osp.join(_REPO_ROOT, 'tools', 'misc')  # run_cli
if _TOOLS_MISC not in sys.path:
    sys.path.insert(0, _TOOLS_MISC)
if sys.path[0] != _REPO_ROOT:
    sys.path.insert(0, _REPO_ROOT)

import mmengine  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dist import is_main_process  # noqa: E402

import mmpromptkd  # noqa: E402,F401  (registers the components)
from mmpromptkd.compat import end_dataloader_workers  # noqa: E402
from mmpromptkd.fileio import temporary_path  # noqa: E402
from run_cli import (  # noqa: E402
    build_runner, close_distributed, load_config, merge_cfg_options,
    naming_the_checkpoint, new_output, parse_run_args, reporting_run_errors,
    resolve_work_dir, set_dataloader_defaults, setup_cpu_distributed)

PRED_SUFFIXES = ('.pkl', '.pickle')
METRIC_SUFFIXES = ('.json', '.yaml', '.yml') + PRED_SUFFIXES


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'checkpoint', nargs='?',
        help='checkpoint file; leave it out to evaluate the model as the '
        'config builds it (a zero-shot CLIP, or a teacher whose weights the '
        'config names)')
    parser.add_argument(
        '--work-dir', help='the directory to save the evaluation logs in')
    parser.add_argument(
        '--out',
        help='output file: the metrics as a flat JSON dict (.json), or the '
        'predictions (.pkl)')
    parser.add_argument(
        '--force', action='store_true', help='replace an existing --out file')
    parser.add_argument(
        '--out-item', choices=['metrics', 'pred'],
        help='what --out holds. Defaults to "pred" for .pkl/.pickle files '
        'and "metrics" otherwise')
    parser.add_argument('--amp', action='store_true', help='test in automatic '
                        'mixed precision (test_cfg.fp16)')
    parser.add_argument(
        '--show-dir',
        help='directory to write the images with their predictions in '
        '(mmpretrain\'s VisualizationHook)')
    parser.add_argument(
        '--show', action='store_true', help='show the predictions in a window')
    parser.add_argument('--interval', type=int, default=1,
                        help='visualize every this many samples')
    parser.add_argument(
        '--wait-time', type=float, default=2,
        help='seconds each shown image stays (0: until a key is pressed)')
    parser.add_argument('--no-pin-memory', action='store_true',
                        help='disable pin_memory in the dataloader')
    args = parse_run_args(parser, argv, 'test_dataloader.batch_size=64')
    if args.out_item is not None and args.out is None:
        parser.error('--out-item needs --out')
    if args.out is not None and args.out_item is None:
        args.out_item = 'pred' if args.out.endswith(PRED_SUFFIXES) else \
            'metrics'
    if args.out_item == 'pred' and not args.out.endswith(PRED_SUFFIXES):
        parser.error('predictions are dumped as a pickle: --out must end '
                     f'with .pkl or .pickle, got {args.out}')
    if args.out_item == 'metrics' and not args.out.endswith(METRIC_SUFFIXES):
        parser.error(f'--out must end with one of {METRIC_SUFFIXES} for '
                     f'metrics, got {args.out}')
    if args.out is not None:
        try:
            new_output(args.out, args.force,
                       [args.config] + [args.checkpoint or args.config])
        except ValueError as e:
            parser.error(str(e))
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line to the config (in place) and return it."""
    cfg.setdefault('default_scope', 'mmpromptkd')
    cfg.launcher = args.launcher
    resolve_work_dir(cfg, args.work_dir, args.config)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.amp:
        cfg.test_cfg = dict(cfg.get('test_cfg', None) or {}, fp16=True)
    if args.show or args.show_dir is not None:
        if 'visualization' not in (cfg.get('default_hooks', None) or {}):
            raise ValueError(
                '--show / --show-dir need default_hooks.visualization = '
                "dict(type='VisualizationHook') in the config")
        cfg.default_hooks.visualization.update(
            enable=True, show=args.show, wait_time=args.wait_time,
            out_dir=args.show_dir, interval=args.interval)
    merge_cfg_options(cfg, args.cfg_options, args.cfg_options_new_keys)
    set_dataloader_defaults(
        cfg, fields=('test_dataloader', ), pin_memory=not args.no_pin_memory)
    return cfg


def flat_metrics(metrics: Dict) -> Dict[str, float]:
    """The scalar metrics as ``{name: float}``; others are left out with a
    warning."""
    flat: Dict[str, float] = {}
    for name, value in metrics.items():
        if hasattr(value, 'item') and getattr(value, 'size', 1) in (1, ()):
            value = value.item()  # numpy or torch scalar
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            flat[name] = float(value)
        else:
            warnings.warn(f'metric {name!r} is not a number; left out of '
                          'the metrics file')
    return flat


def b2n_table(metrics: Dict[str, float], dataset: str) -> Optional[str]:
    """An ASCII table of the ``b2n/*`` metrics present (2 decimals), or None
    without any."""
    cells = [('dataset', dataset)]
    for key, title in (('base', 'base'), ('novel', 'novel'), ('hm', 'HM'),
                       ('all', 'all')):
        value = metrics.get(f'b2n/{key}')
        if value is not None:
            cells.append(
                (title, 'nan' if math.isnan(value) else f'{value:.2f}'))
    if len(cells) == 1:
        return None
    widths = [max(map(len, c)) + 2 for c in cells]
    rule = '+' + '+'.join('-' * w for w in widths) + '+'
    # Centred; an odd remainder goes to the right, as prettytable does.
    lines = [
        '|' + '|'.join((' ' * ((w - len(c[row])) // 2) + c[row]).ljust(w)
                       for c, w in zip(cells, widths)) + '|'
        for row in (0, 1)
    ]
    return '\n'.join([rule, lines[0], rule, lines[1], rule])


def main(argv=None) -> None:
    args = parse_args(argv)
    tool = osp.basename(__file__)
    if args.checkpoint is not None and '://' not in args.checkpoint and \
            not osp.isfile(args.checkpoint):
        sys.exit(f'{tool}: error: checkpoint {args.checkpoint} does not '
                 'exist (or is not a file)')
    try:
        cfg = merge_args(load_config(args.config, tool), args)
    except ValueError as e:  # a mistyped --cfg-options key
        sys.exit(f'{tool}: error: {e}')
    setup_cpu_distributed(cfg, args.launcher)
    runner = build_runner(cfg)
    if args.out_item == 'pred':
        from mmengine.evaluator import DumpResults
        # Dumped beside, then renamed: never half an earlier file.
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=temporary_path(args.out)))
    with naming_the_checkpoint(cfg):
        metrics = flat_metrics(runner.test())
    # Now, not when the runner is collected (5 s per persistent worker).
    end_dataloader_workers(runner.test_loop)
    close_distributed()

    if not is_main_process():
        return
    if args.out_item == 'pred':
        os.replace(temporary_path(args.out), args.out)
    from mmpromptkd.datasets.dataset_wrappers import unwrap_dataset
    dataset = unwrap_dataset(runner.test_dataloader.dataset)
    table = b2n_table(metrics, type(dataset).__name__)
    if table is not None:
        print(table, flush=True)
    if args.out_item == 'metrics':
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        # Atomic; JSON indented, yaml or pickle by the suffix.
        indent = dict(indent=2) if args.out.endswith('.json') else {}
        mmengine.dump(metrics, args.out,
                      backend_args=dict(backend='atomic_local'), **indent)
        print(f'metrics written to {args.out}', flush=True)


if __name__ == '__main__':
    with reporting_run_errors(osp.basename(__file__)):
        main()
