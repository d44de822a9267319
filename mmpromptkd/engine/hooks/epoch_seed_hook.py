"""Reseed the random generators at the start of every epoch."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook

from mmpromptkd.datasets.dataset_wrappers import iter_wrapped_datasets
from mmpromptkd.registry import HOOKS


def epoch_seed(seed: int, epoch: int) -> int:
    """A 32-bit seed derived from a run's seed and an epoch index.

    Args:
        seed (int): The run's seed (``runner.seed``).
        epoch (int): Number of completed epochs.

    Returns:
        int: The seed of that epoch.
    """
    mixed = np.random.SeedSequence([seed % 2**32, epoch])
    return int(mixed.generate_state(1)[0])


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseed the global random generators at the start of every epoch.

    mmengine's checkpoints hold no random generator states, so after
    ``--resume`` the random data augmentation of the main process (all of
    it with ``num_workers=0``) would draw other numbers than an
    uninterrupted run. Seeding ``random``, ``numpy`` and ``torch`` with
    :func:`epoch_seed` of ``runner.seed`` (restored from the checkpoint) and
    the epoch index makes every epoch's draws independent of how the run got
    there. This holds for epoch-based training loops.

    Dataloader workers seed themselves (mmengine's ``worker_init_fn``, from
    the run's seed alone); their draws repeat across a resume only when
    they are recreated each epoch (``persistent_workers=False``).

    A training set (or one it wraps) with a ``set_epoch`` method, such as
    :class:`~mmpromptkd.teacher_cache.TeacherCachedDataset`, is told the epoch
    before the epoch's dataloader iterator starts; such a dataset keeps it
    where its workers, persistent ones included, read it.
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
