"""Dassl's cosine learning rate, restarted after a warm-up."""
from typing import Optional

from mmengine.optim import CosineAnnealingLR
from mmengine.optim.scheduler.param_scheduler import INF

from mmpromptkd.registry import PARAM_SCHEDULERS


@PARAM_SCHEDULERS.register_module()
class DasslCosineAnnealingLR(CosineAnnealingLR):
    """mmengine's ``CosineAnnealingLR`` with Dassl's period.

    Dassl anneals over the whole training (``T_max = MAX_EPOCH``),
    restarting the count after the warm-up; mmengine over ``end - begin``.

    Args:
        T_max (int, optional): Period of the cosine; by default ``end``.
        begin (int): First step (the end of the warm-up).
        end (int): Step after the last one (the Runner sets it).
        optimizer (Optimizer | OptimWrapper): As for ``CosineAnnealingLR``.
        eta_min (float, optional): As for ``CosineAnnealingLR`` (None: 0,
            or ``eta_min_ratio``).
        **kwargs: As for ``CosineAnnealingLR``.
    """

    def __init__(self, optimizer, T_max: Optional[int] = None,
                 eta_min: Optional[float] = None, begin: int = 0,
                 end: int = INF, **kwargs) -> None:
        if T_max is None and end == INF:
            raise ValueError(
                f'{type(self).__name__} needs T_max or end; the Runner sets '
                'end to train_cfg.max_epochs (or max_iters) when it builds '
                'the schedulers of a training run')
        # A run no longer than the warm-up (e.g. max_epochs=1) has no cosine
        # epoch: the scheduler is kept, and never acts.
        super().__init__(
            optimizer, T_max=end if T_max is None else T_max,
            eta_min=eta_min, begin=begin, end=max(end, begin + 1), **kwargs)
