"""Dassl's cosine learning rate, restarted after a warm-up."""
from typing import Optional

from mmengine.optim import CosineAnnealingLR
from mmengine.optim.scheduler.param_scheduler import INF

from mmpromptkd.registry import PARAM_SCHEDULERS


@PARAM_SCHEDULERS.register_module()
class DasslCosineAnnealingLR(CosineAnnealingLR):
    """mmengine's ``CosineAnnealingLR`` with Dassl's period.

    Dassl (the reference's trainer) anneals over ``T_max = MAX_EPOCH``
    epochs, the whole training, and with ``WARMUP_RECOUNT=True`` restarts
    that count when the warm-up ends: epoch ``k >= begin`` runs at
    ``eta_min + (lr - eta_min) * (1 + cos(pi * (k - begin) / T_max)) / 2``.
    mmengine's scheduler would anneal over ``end - begin`` epochs instead.
    Here ``T_max`` defaults to ``end``, which the Runner sets to
    ``train_cfg.max_epochs`` when the config leaves it out, so a shortened
    run (``--cfg-options train_cfg.max_epochs=5``) keeps the reference's
    schedule for its length.

    Args:
        optimizer: Wrapped optimizer (or optimizer wrapper).
        T_max (int, optional): Period of the cosine in epochs (or
            iterations). Defaults to ``end``.
        eta_min (float, optional): Minimum learning rate. Defaults to None
            (0, or ``eta_min_ratio`` of the initial lr).
        begin (int): First step of the scheduler (the end of the warm-up).
            Defaults to 0.
        end (int): Step after the last one; the Runner's default is the
            training length. Defaults to ``INF`` (then ``T_max`` is
            required).
        **kwargs: The other arguments of ``CosineAnnealingLR``
            (``by_epoch``, ``last_step``, ``eta_min_ratio``, ...).
    """

    def __init__(self,
                 optimizer,
                 T_max: Optional[int] = None,
                 eta_min: Optional[float] = None,
                 begin: int = 0,
                 end: int = INF,
                 **kwargs) -> None:
        if T_max is None and end == INF:
            raise ValueError(
                f'{type(self).__name__} needs T_max or end; the Runner sets '
                'end to train_cfg.max_epochs (or max_iters) when it builds '
                'the schedulers of a training run')
        if T_max is None:
            T_max = end
        if end <= begin:
            # A run no longer than the warm-up (e.g. max_epochs=1) has no
            # cosine epoch: keep the scheduler, which then never acts.
            end = begin + 1
        super().__init__(
            optimizer,
            T_max=T_max,
            eta_min=eta_min,
            begin=begin,
            end=end,
            **kwargs)
