"""Run the teacher once over a training stream, as ``tools/train.py``
iterates it, and cache its logits (docs/teacher_cache.md)."""
import argparse
import os.path as osp
import sys
import tempfile
from typing import List, Optional

_REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
for _path in (_REPO_ROOT, osp.dirname(osp.abspath(__file__))):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import mmpromptkd  # noqa: E402,F401  (registers the components)
from mmpromptkd.compat import end_dataloader_workers  # noqa: E402
from mmpromptkd.teacher_cache import (STORAGES,  # noqa: E402
                                      record_teacher_cache,
                                      replayable_dataset_config)
from run_cli import (CfgOptionsAction, build_runner,  # noqa: E402
                     load_config, merge_cfg_options, set_dataloader_defaults)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='Cache the teacher logits of a training stream.')
    parser.add_argument('config', help='a PromptKD training config (with '
                        'its teacher)')
    parser.add_argument('--out', help='the cache folder to create '
                        '(default: work_dirs/teacher_cache/<config name>)')
    parser.add_argument('--epochs', type=int,
                        help='views per image to record (default: the '
                        "config's train_cfg.max_epochs)")
    parser.add_argument('--storage', choices=STORAGES, default='float16',
                        help='how logits are stored (default: float16)')
    parser.add_argument('--topk', type=int,
                        help='logits kept per view with --storage topk')
    parser.add_argument('--member', type=int,
                        help='with a TeacherEnsemble teacher: the member '
                        'whose logits to record (one cache per member)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override settings of the config, as in '
                        'tools/train.py (e.g. randomness.seed=2)')
    args = parser.parse_args(argv)
    cfg = load_config(args.config, 'cache_teacher_logits.py')
    name = osp.splitext(osp.basename(args.config))[0]
    member = '' if args.member is None else f'_member{args.member}'
    out = args.out or osp.join('work_dirs', 'teacher_cache', name + member)
    try:
        if cfg.train_dataloader.dataset.get('type') in (
                'TeacherCachedDataset', 'mmpromptkd.TeacherCachedDataset'):
            raise ValueError('the config trains on a teacher cache already: '
                             'give the config with the teacher')
        merge_cfg_options(cfg, args.cfg_options)
        if osp.lexists(out):
            raise FileExistsError(f'{out} exists: a teacher cache is never '
                                  'overwritten')
        epochs = args.epochs or cfg.train_cfg.get('max_epochs')
        if not epochs or epochs <= 0:
            raise ValueError('give --epochs: the config has no '
                             'train_cfg.max_epochs (a teacher cache is '
                             'recorded per epoch)')
    except (FileExistsError, ValueError) as e:
        sys.exit(f'{osp.basename(__file__)}: error: {e}')
    cfg.setdefault('default_scope', 'mmpromptkd')
    cfg.launcher = 'none'
    cfg.train_dataloader.dataset = replayable_dataset_config(
        cfg.train_dataloader.dataset)
    set_dataloader_defaults(cfg)  # as tools/train.py
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    with tempfile.TemporaryDirectory() as work_dir:
        cfg.work_dir = work_dir
        runner = build_runner(cfg)
        try:
            cache = record_teacher_cache(runner, out, epochs, args.storage,
                                         args.topk, args.member, args.config)
        except ValueError as e:
            sys.exit(f'{osp.basename(__file__)}: error: {e}')
        end_dataloader_workers(runner.train_loop)
    print(f'{cache.path}: {epochs} view(s) of {cache.num_samples} images, '
          f'{cache.meta["num_classes"]} classes, {args.storage} logits, '
          f'{cache.size_bytes() / 2**20:.2f} MiB '
          f'({cache.size_bytes() / cache.num_samples / epochs:.0f} bytes per '
          f'view), {cache.meta["seconds"]:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
