"""Stop a run at the first non-finite loss, naming the last good checkpoint."""
import glob
import math
import os.path as osp
from typing import Iterator, List, Optional, Tuple

import torch
from mmengine.hooks import Hook

from mmpromptkd.registry import HOOKS
from mmpromptkd.utils import load_checkpoint_file


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training with a clear message when a loss is NaN or infinite.

    It runs after every training iteration, before any checkpoint of the
    epoch is written. The message names the newest checkpoint that is
    *good*: all its floating tensors are finite, and its weights already
    gave a finite loss (it was saved before the iteration before the failing
    one). A checkpoint saved just before the failing iteration holds the
    weights that produced the non-finite loss (e.g. prompts at 1e30 after a
    diverging step) and is named as such, not as a point to resume from.
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
                raise FloatingPointError(
                    f'{name} is {value} at iteration {runner.iter + 1} '
                    f'(epoch {runner.epoch + 1}, batch {batch_idx + 1}); '
                    f'stopping. {self._checkpoint_advice(runner)}')

    @staticmethod
    def _checkpoint_advice(runner) -> str:
        """Which checkpoint of the work directory to resume from, and why."""
        bad: List[str] = []
        for path, step, problem in _checkpoints_newest_first(
                runner.work_dir, runner.iter):
            if problem is None:
                shown = '; newer ones: ' + ', '.join(bad) if bad else ''
                return (f'The last good checkpoint is {path} (after '
                        f'iteration {step}: finite weights that gave finite '
                        f'losses){shown}. Resume from it (--resume {path}) '
                        'with a lower learning rate or loss weight.')
            bad.append(f'{path} ({problem})')
        if bad:
            return ('No checkpoint of the work directory is good: ' +
                    ', '.join(bad) + '. Start again with a lower learning '
                    'rate or loss weight.')
        return (f'No checkpoint was written in {runner.work_dir}; start '
                'again with a lower learning rate or loss weight.')


def _checkpoints_newest_first(
        work_dir: str,
        failing_iter: int) -> Iterator[Tuple[str, int, Optional[str]]]:
    """(path, iteration, problem or None) of the run's checkpoints.

    Newest written first, and read one at a time: the caller stops at the
    first good one, so older (possibly large) files are never read. A
    checkpoint saved after ``failing_iter`` iterations holds the weights the
    failing iteration ran with.
    """
    paths = glob.glob(osp.join(glob.escape(work_dir), '*.pth'))
    for path in sorted(paths, key=osp.getmtime, reverse=True):
        try:
            checkpoint = load_checkpoint_file(path)
            step = int(checkpoint['meta']['iter'])
            state = checkpoint['state_dict']
        except Exception as e:  # noqa: BLE001 (any unreadable file is named)
            yield path, -1, f'unreadable: {type(e).__name__}'
            continue
        non_finite = [
            k for k, v in state.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point()
            and not torch.isfinite(v).all()
        ]
        if non_finite:
            yield path, step, f'NaN or infinite values in {non_finite[:3]}'
        elif step >= failing_iter:
            yield path, step, 'its weights produced this loss'
        else:
            yield path, step, None
