"""Reseed the random generators at the start of every epoch."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook

from mmpromptkd.datasets.dataset_wrappers import iter_wrapped_datasets
from mmpromptkd.registry import HOOKS


def epoch_seed(seed: int, epoch: int) -> int:
    """The 32-bit seed of a run's ``seed`` after ``epoch`` epochs."""
    mixed = np.random.SeedSequence([seed % 2**32, epoch])
    return int(mixed.generate_state(1)[0])


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseed the global random generators at the start of every epoch, so
    augmentation draws the same numbers after ``--resume``; a training set
    (or one it wraps) with ``set_epoch`` is told the epoch.
    """

    priority = 'VERY_HIGH'

    def before_train_epoch(self, runner) -> None:
        seed = epoch_seed(runner.seed, runner.epoch)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)  # also seeds every CUDA device
        loader = getattr(runner, 'train_dataloader', None)
        for dataset in iter_wrapped_datasets(getattr(loader, 'dataset', None)):
            if callable(getattr(type(dataset), 'set_epoch', None)):
                dataset.set_epoch(runner.epoch)
