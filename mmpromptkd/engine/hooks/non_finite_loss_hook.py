"""Stop a run at the first non-finite loss, naming the last good checkpoint."""
import glob
import math
import os.path as osp
from typing import List, Optional

import torch
from mmengine.hooks import Hook

from mmpromptkd.registry import HOOKS
from mmpromptkd.utils import load_checkpoint_file


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training when a loss is NaN or infinite, naming the newest good
    checkpoint (finite, and saved before the weights that gave that loss).
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        for name, value in (outputs or {}).items():
            if hasattr(value, 'detach'):
                value = value.detach()
            if 'loss' in name and not math.isfinite(float(value)):
                raise FloatingPointError(
                    f'{name} is {float(value)} at iteration {runner.iter + 1} '
                    f'(epoch {runner.epoch + 1}, batch {batch_idx + 1}); '
                    f'stopping. {self._checkpoint_advice(runner)}')

    @staticmethod
    def _checkpoint_advice(runner) -> str:
        """Which checkpoint of the work directory to resume from, and why."""
        bad: List[str] = []
        paths = glob.glob(osp.join(glob.escape(runner.work_dir), '*.pth'))
        for path in sorted(paths, key=osp.getmtime, reverse=True):
            try:
                checkpoint = load_checkpoint_file(path)
                step = int(checkpoint['meta']['iter'])
                state = checkpoint['state_dict']
            except Exception as e:  # noqa: BLE001 (an unreadable one named)
                bad.append(f'{path} (unreadable: {type(e).__name__})')
                continue
            non_finite = [k for k, v in state.items()
                          if isinstance(v, torch.Tensor)
                          and v.is_floating_point()
                          and not torch.isfinite(v).all()]
            if non_finite:
                bad.append(f'{path} (NaN or infinite values in '
                           f'{non_finite[:3]})')
            elif step >= runner.iter:
                bad.append(f'{path} (its weights produced this loss)')
            else:
                shown = '; newer ones: ' + ', '.join(bad) if bad else ''
                return (f'The last good checkpoint is {path} (after '
                        f'iteration {step}: finite weights that gave finite '
                        f'losses){shown}. Resume from it (--resume {path}) '
                        'with a lower learning rate or loss weight.')
        if bad:
            return ('No checkpoint of the work directory is good: ' +
                    ', '.join(bad) + '. Start again with a lower learning '
                    'rate or loss weight.')
        return (f'No checkpoint was written in {runner.work_dir}; start '
                'again with a lower learning rate or loss weight.')
