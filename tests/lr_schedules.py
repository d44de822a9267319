"""Learning rates per epoch: Dassl's, and what a config's schedulers give.

:func:`dassl_lrs` is Dassl's schedule written out independently of
mmengine; :func:`scheduled_lrs` steps a config's mmengine schedulers.
Dassl builds ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=MAX_EPOCH)``
and wraps it in a constant warm-up scheduler; with ``WARMUP_RECOUNT=True``
(its default) the wrapped cosine starts counting only after the warm-up.
The scheduler steps once after every epoch.
"""
from typing import List

import torch
from mmpromptkd.registry import PARAM_SCHEDULERS
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler


class ConstantWarmup(LRScheduler):
    """Dassl's constant warm-up around a successor scheduler."""

    def __init__(self, optimizer, successor, warmup_epoch, cons_lr):
        self.successor = successor
        self.warmup_epoch = warmup_epoch
        self.cons_lr = cons_lr
        super().__init__(optimizer)

    def step(self, epoch=None):
        if self.last_epoch >= self.warmup_epoch:
            self.successor.step(epoch)
            self._last_lr = self.successor.get_last_lr()
        else:
            super().step(epoch)

    def get_lr(self):
        if self.last_epoch >= self.warmup_epoch:
            return self.successor.get_last_lr()
        return [self.cons_lr for _ in self.base_lrs]


def dassl_lrs(base_lr: float,
              max_epoch: int,
              warmup_epoch: int = 1,
              cons_lr: float = 1e-5) -> List[float]:
    """The lr Dassl trains each epoch with (0-based epochs)."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=base_lr)
    successor = CosineAnnealingLR(optimizer, T_max=max_epoch)
    scheduler = ConstantWarmup(optimizer, successor, warmup_epoch, cons_lr)
    lrs = []
    for _ in range(max_epoch):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    return lrs


def schedule_length(cfg) -> int:
    """Epochs of an epoch-based config, iterations of an iteration-based
    one (the unit its schedulers step in)."""
    if cfg.train_cfg.get('type') == 'IterBasedTrainLoop':
        return cfg.train_cfg.max_iters
    return cfg.train_cfg.max_epochs


def scheduled_lrs(cfg) -> List[float]:
    """The lr of each epoch (or iteration, see :func:`schedule_length`)
    under the ``param_scheduler`` of a config."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=cfg.optim_wrapper.optimizer.lr)
    # As mmengine's Runner: a scheduler without ``end`` ends with training.
    length = schedule_length(cfg)
    schedulers = [
        PARAM_SCHEDULERS.build(
            dict({'end': length, **s}, optimizer=optimizer))
        for s in cfg.param_scheduler
    ]
    lrs = []
    for _ in range(length):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()  # no gradients: only keeps the call order right
        for scheduler in schedulers:
            scheduler.step()
    return lrs
