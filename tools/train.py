"""Train a model with an mmpromptkd config (mmpretrain's command line); a
fresh run never overwrites the checkpoints of an earlier one."""
import argparse
import os.path as osp
import sys

# This checkout, even where another copy is installed.
_REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
_TOOLS_MISC = osp.join(_REPO_ROOT, 'tools', 'misc')  # run_cli
if _TOOLS_MISC not in sys.path:
    sys.path.insert(0, _TOOLS_MISC)
if sys.path[0] != _REPO_ROOT:
    sys.path.insert(0, _REPO_ROOT)

from mmengine.config import Config  # noqa: E402

import mmpromptkd  # noqa: E402,F401  (registers the components)
from mmpromptkd.compat import end_dataloader_workers  # noqa: E402
from run_cli import (  # noqa: E402
    build_runner, check_work_dir_is_free, close_distributed, enable_amp,
    hinting_how_to_continue, load_config, lock_work_dir, merge_cfg_options,
    naming_the_checkpoint, parse_run_args, reporting_run_errors,
    resolve_work_dir, set_dataloader_defaults, setup_cpu_distributed)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or without a path from the '
        'latest checkpoint of the work directory (a fresh start if there is '
        'none)')
    parser.add_argument(
        '--amp', action='store_true',
        help='automatic mixed precision: float16 with loss scaling on a GPU, '
        'bfloat16 autocast on a CPU; weights stay float32')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate by the actual total batch size over '
        'auto_scale_lr.base_batch_size')
    parser.add_argument('--no-pin-memory', action='store_true',
                        help='disable pin_memory in the dataloaders')
    parser.add_argument(
        '--no-persistent-workers', action='store_true',
        help='disable persistent_workers in the dataloaders (it is only '
        'ever enabled for dataloaders with num_workers > 0)')
    return parse_run_args(parser, argv, 'train_cfg.max_epochs=2')


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line to the config (in place) and return it."""
    cfg.setdefault('default_scope', 'mmpromptkd')
    cfg.launcher = args.launcher
    resolve_work_dir(cfg, args.work_dir, args.config)
    if args.amp:
        enable_amp(cfg)
    if args.resume is not None:
        cfg.resume = True
        cfg.load_from = None if args.resume == 'auto' else args.resume
    if args.auto_scale_lr:
        if 'base_batch_size' not in (cfg.get('auto_scale_lr', None) or {}):
            raise ValueError('--auto-scale-lr needs `auto_scale_lr = dict('
                             'base_batch_size=...)` in the config')
        cfg.auto_scale_lr.enable = True
    merge_cfg_options(cfg, args.cfg_options, args.cfg_options_new_keys)
    # After --cfg-options, which may name the validation settings.
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    # After --cfg-options, which may change num_workers.
    set_dataloader_defaults(
        cfg,
        pin_memory=not args.no_pin_memory,
        persistent_workers=not args.no_persistent_workers)
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    tool = osp.basename(__file__)
    cfg = load_config(args.config, tool)
    # Mistakes of the command line: a message, before anything is built.
    try:
        cfg = merge_args(cfg, args)
        if cfg.get('resume', False) and cfg.get('load_from', None) and \
                '://' not in cfg.load_from and not osp.isfile(cfg.load_from):
            raise FileNotFoundError(
                f'checkpoint to resume from {cfg.load_from} does not exist')
        # Held until the run ends: a second run into this work dir fails.
        work_dir_lock = lock_work_dir(cfg)  # noqa: F841
        check_work_dir_is_free(cfg)
    except (FileExistsError, FileNotFoundError, RuntimeError,
            ValueError) as e:
        sys.exit(f'{tool}: error: {e}')
    setup_cpu_distributed(cfg, args.launcher)
    runner = build_runner(cfg)
    # Ctrl-C says whether --resume would continue the run or start over.
    with naming_the_checkpoint(cfg), hinting_how_to_continue(cfg):
        runner.train()
    # Now, not when the runner is collected (5 s per persistent worker).
    end_dataloader_workers(runner.train_loop, runner.val_loop)
    close_distributed()


if __name__ == '__main__':
    with reporting_run_errors(osp.basename(__file__)):
        main()
