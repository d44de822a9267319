"""Stop a run at the first non-finite loss."""
import math
from typing import Optional

from mmengine.hooks import Hook

from mmpromptkd.registry import HOOKS


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training with a clear message when a loss is NaN or infinite.

    It runs after every training iteration, before any checkpoint of the
    epoch is written, so the last checkpoint on disk stays the last good one.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        for name, value in (outputs or {}).items():
            if 'loss' not in name:
                continue
            if hasattr(value, 'detach'):
                value = value.detach()
            value = float(value)
            if not math.isfinite(value):
                last = runner.work_dir
                raise FloatingPointError(
                    f'{name} is {value} at iteration {runner.iter + 1} '
                    f'(epoch {runner.epoch + 1}, batch {batch_idx + 1}); '
                    f'stopping. Checkpoints in {last} written before this '
                    'iteration are intact; resume from the last one with a '
                    'lower learning rate or loss weight.')
