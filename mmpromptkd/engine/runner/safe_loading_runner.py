"""mmengine's Runner, reading checkpoints without running code in them."""
import logging
import os
import os.path as osp
import re
from typing import Callable, Dict, Optional, Tuple, Union

from mmengine.dist import get_rank
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.runner import Runner, find_latest_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict
from torch.utils.data import DataLoader

from mmpromptkd.datasets.run_seed import using_run_seed
from mmpromptkd.engine.hooks.safe_checkpoint_hook import checkpoint_folder
from mmpromptkd.models.utils.frozen_weights import (FROZEN_WEIGHTS_META,
                                                    check_frozen_weights)
from mmpromptkd.registry import RUNNERS
from mmpromptkd.utils.checkpoint_io import (SAFE_SCHEME,
                                            is_complete_checkpoint,
                                            load_from_local)
from .batch_and_lr import describe_batch_and_lr


CheckpointLoader.register_scheme(prefixes=SAFE_SCHEME, loader=load_from_local)

# Names CheckpointHook gives by default (``epoch_{}.pth``, ``iter_{}.pth``).
_CHECKPOINT_NAME = re.compile(r'^(?:epoch|iter)_\d+\.pth$')


def choose_resume_checkpoint(
        work_dir: str, checkpoint_dir: str,
        logger: logging.Logger) -> Tuple[bool, Optional[str]]:
    """What an auto-resume (``--resume`` without a path) resumes from.

    Args:
        work_dir (str): The run's work directory (with ``last_checkpoint``).
        checkpoint_dir (str): Where the checkpoint hook writes.
        logger (logging.Logger): Where a changed choice is reported.

    Returns:
        tuple: Whether to resume, and from which file (None: mmengine's
        choice).
    """
    marker = osp.join(work_dir, 'last_checkpoint')
    recorded = ''
    if osp.isfile(marker):
        with open(marker, encoding='utf-8') as f:
            recorded = f.read().strip()
    # A fresh run (mmengine starts from scratch), or a usable record.
    if not osp.exists(marker) or '://' in recorded or \
            is_complete_checkpoint(recorded):
        return True, None
    problem = (f'names {recorded}, which is missing or incomplete'
               if recorded else 'is empty')
    names = os.listdir(checkpoint_dir) if osp.isdir(checkpoint_dir) else []
    candidates = sorted(
        (p for p in (osp.join(checkpoint_dir, n) for n in names
                     if _CHECKPOINT_NAME.match(n))
         if is_complete_checkpoint(p)),
        key=lambda p: (osp.getmtime(p), p))
    if candidates:
        logger.warning(f'{marker} {problem}; resuming from the newest '
                       f'complete checkpoint {candidates[-1]} instead')
        return True, candidates[-1]
    # mmengine would try to resume from the broken record.
    logger.warning(f'{marker} {problem} and there is no complete '
                   'checkpoint; training starts afresh')
    return False, None


@RUNNERS.register_module()
class SafeLoadingRunner(Runner):
    """A Runner whose ``--resume``, ``load_from`` and test loads are safe.

    Checkpoints are read by :func:`~mmpromptkd.utils.load_checkpoint_file`,
    without their config text (which resuming would execute). It resumes
    from the newest complete checkpoint when ``last_checkpoint`` is broken,
    logs the effective batch and lr, and lets datasets given ``seed=None``
    draw their shots with the run's seed.

    Args:
        *args: As for mmengine's ``Runner``.
        load_from (str, optional): As for mmengine's ``Runner``.
        resume (bool): As for mmengine's ``Runner``.
        **kwargs: As for mmengine's ``Runner``.
    """

    def __init__(self, *args, load_from: Optional[str] = None,
                 resume: bool = False, **kwargs) -> None:
        super().__init__(*args, load_from=load_from, resume=resume, **kwargs)
        self.checkpoint_to_load = load_from
        self.resume_training = resume
        self.checkpoint_loaded = False

    def scale_lr(self, optim_wrapper, auto_scale_lr=None) -> None:
        """mmengine's, then log the effective batch and lr."""
        super().scale_lr(optim_wrapper, auto_scale_lr)
        loader = self._train_dataloader
        batch_size = loader.batch_size if isinstance(loader, DataLoader) \
            else loader['batch_size']
        wrappers = list(optim_wrapper.values()) if isinstance(
            optim_wrapper, OptimWrapperDict) else [optim_wrapper]
        lrs = [group['lr'] for wrapper in wrappers
               for group in wrapper.optimizer.param_groups]
        settings = self.cfg.get('optim_wrapper', None) or {}
        statement, warning = describe_batch_and_lr(
            batch_size, self.world_size, lrs, auto_scale_lr,
            settings.get('accumulative_counts', 1))
        self.logger.info(statement)
        if warning is not None:
            self.logger.warning(warning)

    @staticmethod
    def build_dataloader(dataloader: Union[DataLoader, Dict],
                         seed: Optional[int] = None,
                         diff_rank_seed: bool = False) -> DataLoader:
        """mmengine's, with ``seed`` as the datasets' default shot seed."""
        # Every rank must train on the same shots: undo the rank that
        # mmengine adds to the seed with diff_rank_seed.
        draw_seed = seed - get_rank() \
            if seed is not None and diff_rank_seed else seed
        with using_run_seed(draw_seed):
            return Runner.build_dataloader(dataloader, seed, diff_rank_seed)

    def load_or_resume(self) -> None:
        """mmengine's ``load_or_resume``, from a complete checkpoint."""
        if self.checkpoint_loaded:
            return
        resume, path = self.resume_training, self.checkpoint_to_load
        if resume and path is None:
            hook = next((h for h in self.hooks
                         if isinstance(h, CheckpointHook)), None)
            resume, path = choose_resume_checkpoint(
                self.work_dir,
                checkpoint_folder(self.work_dir, hook and hook.out_dir),
                self.logger)
        if resume and path is None:
            path = find_latest_checkpoint(self.work_dir)
            if path is None:
                # Said, not silent: the user asked to continue a run.
                self.logger.warning(
                    f'--resume: {self.work_dir} holds no checkpoint; '
                    'training starts from the beginning')
            else:
                self.logger.info(
                    f'Auto resumed from the latest checkpoint {path}.')
        if path is not None:
            (self.resume if resume else self.load_checkpoint)(path)
            self.checkpoint_loaded = True

    def load_checkpoint(self, filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]) -> dict:
        """mmengine's ``load_checkpoint``, reading the file safely."""
        checkpoint = load_from_local(filename, map_location=map_location)
        meta = checkpoint.get('meta')
        meta = meta if isinstance(meta, dict) else {}
        # Config.fromstring would execute it: stored text is code.
        meta.pop('config', None)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(
            self.model) else self.model
        # A checkpoint without its frozen weights takes the model's: they
        # must be the ones it was trained with.
        check_frozen_weights(model, meta.get(FROZEN_WEIGHTS_META), filename)
        state_dict = checkpoint.get('state_dict', checkpoint)
        # Revised in place: the dict keeps torch's per-module versions.
        for pattern, replacement in revise_keys:
            for key in list(state_dict):
                revised = re.sub(pattern, replacement, key)
                if revised != key:
                    state_dict[revised] = state_dict.pop(key)
        load_state_dict(model, state_dict, strict)
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint
