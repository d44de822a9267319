"""Run the teacher once over a training stream and cache its logits.

Example::

    python tools/misc/cache_teacher_logits.py \\
        configs/promptkd/promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py

iterates the config's training data exactly as ``tools/train.py`` would
(the same sampler order, the same per-epoch seeds, the same crops and
flips) for ``--epochs`` epochs (default: the config's), runs only the
teacher, and writes every view's crop, flip and teacher logits, and the
teacher's text features, to a :class:`TeacherLogitCache` folder (default
``work_dirs/teacher_cache/<config name>``; it must not exist, and appears
only when complete). Student runs then read it through
:class:`TeacherCachedDataset` (see the ``*_teacher-cache.py`` configs and
docs/teacher_cache.md) and need no teacher; with the same seed and
``views='recorded'`` they train the same student as the config itself.
"""
import argparse
import os.path as osp
import random
import sys
import tempfile
import time
from typing import List, Optional

_REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.model import is_model_wrapper  # noqa: E402

import mmpromptkd  # noqa: E402,F401  (registers the components)
from mmpromptkd.cli import (CfgOptionsAction, build_runner,  # noqa: E402
                            check_cfg_options, load_config,
                            set_dataloader_defaults)
from mmpromptkd.compat import end_dataloader_workers  # noqa: E402
from mmpromptkd.datasets import TeacherLogitCache  # noqa: E402
from mmpromptkd.datasets.teacher_cached_dataset import (  # noqa: E402
    pipeline_signature, replayable_dataset_config)
from mmpromptkd.datasets.teacher_cache_fingerprints import (  # noqa: E402
    sample_fingerprints)
from mmpromptkd.datasets.teacher_logit_cache import (  # noqa: E402
    STORAGES, sample_paths)
from mmpromptkd.engine.hooks import CPUThreadsHook  # noqa: E402
from mmpromptkd.models.utils.input_normalization import (  # noqa: E402
    teacher_input_normalization)
from mmpromptkd.models.utils.teacher_provenance import (  # noqa: E402
    teacher_record)
from mmpromptkd.engine.hooks.epoch_seed_hook import epoch_seed  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse command-line arguments.

    Args:
        argv (list[str], optional): Arguments without the program name;
            None reads ``sys.argv``. Defaults to None.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
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
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override settings of the config, as in '
                        'tools/train.py (e.g. randomness.seed=2)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Record a teacher cache.

    Args:
        argv (list[str], optional): Arguments; defaults to ``sys.argv[1:]``.

    Returns:
        int: The exit status.
    """
    args = parse_args(argv)
    cfg = load_config(args.config, 'cache_teacher_logits.py')
    name = osp.splitext(osp.basename(args.config))[0]
    out = args.out or osp.join('work_dirs', 'teacher_cache', name)
    try:
        if cfg.train_dataloader.dataset.get('type') in (
                'TeacherCachedDataset', 'mmpromptkd.TeacherCachedDataset'):
            raise ValueError('the config trains on a teacher cache already: '
                             'give the config with the teacher')
        if args.cfg_options:
            check_cfg_options(cfg, args.cfg_options)
            cfg.merge_from_dict(args.cfg_options)
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
    signature = pipeline_signature(cfg.train_dataloader.dataset)
    set_dataloader_defaults(cfg)  # as tools/train.py
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    with tempfile.TemporaryDirectory() as work_dir:
        cfg.work_dir = work_dir
        runner = build_runner(cfg)
        cache = record(runner, out, epochs, args.storage, args.topk,
                       signature, args.config)
        end_dataloader_workers(runner.train_loop)
    print(f'{cache.path}: {epochs} view(s) of {cache.num_samples} images, '
          f'{cache.meta["num_classes"]} classes, {args.storage} logits, '
          f'{cache.size_bytes() / 2**20:.2f} MiB '
          f'({cache.size_bytes() / cache.num_samples / epochs:.0f} bytes per '
          f'view), {cache.meta["seconds"]:.1f} s')
    return 0


def record(runner, out: str, epochs: int, storage: str,
           topk: Optional[int], pipeline: str,
           config: str) -> TeacherLogitCache:
    """Iterate the runner's training data as training does; cache logits.

    Per epoch, the sampler is told the epoch (DistSamplerSeedHook) and the
    global generators are seeded with :func:`epoch_seed` (EpochSeedHook),
    so the data loader draws what a training run draws; the config's
    CPUThreadsHook sets the threads (for the recording), so the teacher
    computes as in training.

    Args:
        runner (Runner): A runner of the config (not trained).
        out (str): The cache folder.
        epochs (int): Epochs to record.
        storage (str): Logit storage.
        topk (int, optional): Logits kept with 'topk'.
        pipeline (str): The replayable pipelines (for the check on reading).
        config (str): The config path, for the record.

    Returns:
        TeacherLogitCache: The committed cache.
    """
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    if model.teacher is None:
        raise ValueError('the config has no teacher to cache')
    if hasattr(model.teacher, 'members'):
        raise ValueError(
            'model.teacher is a TeacherEnsemble: its combined logits depend '
            "on the loss's temperature and weighting, and caches of "
            'ensembles are not supported; record the cache of a single '
            'teacher, or train the ensemble online')
    if model.distill_target != 'logits':
        raise ValueError("a teacher cache holds logits: distill_target must "
                         "be 'logits'")
    # The thread count of training (CPUThreadsHook), so that the logits are
    # computed as an online run computes them, to the last bit.
    thread_hooks = [h for h in runner.hooks if isinstance(h, CPUThreadsHook)]
    for hook in thread_hooks:
        hook.before_run(runner)
    loader = runner.train_dataloader
    dataset = loader.dataset
    names = tuple(dataset.metainfo['classes'])
    model.eval()
    model.prepare_text_features(names, True, type(dataset).__name__)
    text = model.text_features
    paths = sample_paths(dataset)
    cache = TeacherLogitCache.create(
        out,
        num_views=epochs,
        num_samples=len(dataset),
        class_names=names,
        text_features=text.float().cpu().numpy(),
        storage=storage,
        topk=topk,
        tau=getattr(model.distill_loss, 'tau', 1.0),
        sample_paths=paths,
        sample_fingerprints=sample_fingerprints(dataset, config),
        pipeline=pipeline,
        seed=runner.seed,
        config=osp.basename(config),
        teacher=teacher_record(model.teacher),
        # What the teacher's images were normalised with (0-255 scale).
        teacher_input=teacher_input_normalization(
            model.data_preprocessor, model.teacher_normalization))
    start = time.perf_counter()
    try:
        for epoch in range(epochs):
            if hasattr(loader.sampler, 'set_epoch'):
                loader.sampler.set_epoch(epoch)
            seed = epoch_seed(runner.seed, epoch)
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)
            for data in loader:
                samples = data['data_samples']
                batch = model.data_preprocessor(data, True)
                logits = model.teacher_logits(batch['inputs'], text)
                cache.put(epoch, [s.sample_idx for s in samples],
                          [s.metainfo.get('view_crop') for s in samples],
                          [s.metainfo.get('flip', False) for s in samples],
                          logits.float().cpu().numpy())
            runner.logger.info(f'teacher cache: epoch {epoch + 1}/{epochs} '
                               'recorded')
        cache.meta['seconds'] = time.perf_counter() - start
        runner.cfg.dump(osp.join(cache.path, 'config.py'))
        return cache.commit()
    except BaseException:
        cache.discard()
        raise
    finally:
        for hook in thread_hooks:
            hook.after_run(runner)


if __name__ == '__main__':
    sys.exit(main())
