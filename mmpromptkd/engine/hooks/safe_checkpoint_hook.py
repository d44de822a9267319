"""mmengine's CheckpointHook with writes that never lose a good checkpoint."""
import os
import os.path as osp
from typing import Callable, List, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper

from mmpromptkd.fileio import atomic_write, dead_temporaries
from mmpromptkd.models.utils.frozen_weights import (FROZEN_WEIGHTS_META,
                                                    frozen_parameters,
                                                    frozen_weights_record,
                                                    strip_frozen_weights)
from mmpromptkd.registry import HOOKS
from mmpromptkd.utils import is_remote_path


def checkpoint_folder(work_dir: str, out_dir: Optional[str] = None) -> str:
    """Where mmengine's ``CheckpointHook`` with ``out_dir`` writes: the last
    level of ``work_dir`` in ``out_dir``, or ``work_dir``."""
    if not out_dir or out_dir == work_dir:
        return work_dir
    return osp.join(out_dir, osp.basename(osp.normpath(work_dir)))


def saves_now(hook: CheckpointHook, runner, by_epoch: bool) -> bool:
    """Whether ``hook`` saves after this training epoch (``by_epoch``) or
    iteration; ``runner``'s counters have not advanced yet."""
    if hook.by_epoch != by_epoch:
        return False
    if by_epoch:
        return hook.every_n_epochs(runner, hook.interval, hook.save_begin) \
            or (hook.save_last and hook.is_last_train_epoch(runner))
    return hook.every_n_train_iters(runner, hook.interval, hook.save_begin) \
        or (hook.save_last and hook.is_last_train_iter(runner))


def remove_stale_temporaries(folder: str) -> list:
    """Delete the package's temporary files of killed processes in
    ``folder``; return their paths."""
    removed = [p for p in dead_temporaries(folder) if osp.isfile(p)]
    for path in removed:  # never a folder
        os.remove(path)
    return removed


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """CheckpointHook whose failures leave every earlier checkpoint usable.

    Checkpoints and then ``last_checkpoint`` are written atomically, old
    ones removed after; temporaries of killed runs are removed at the
    start. Frozen parameters are left out (``meta['frozen_weights']``
    records their fingerprint) unless the model's ``save_clip_weights`` or
    ``save_frozen_weights`` is True.

    Args:
        save_frozen_weights (bool): Keep the frozen parameters.
        max_keep_ckpts (int): How many of the latest checkpoints to keep
            (-1: all).
        **kwargs: The other arguments of mmengine's ``CheckpointHook``.
    """

    def __init__(self, save_frozen_weights: bool = False,
                 max_keep_ckpts: int = -1, **kwargs) -> None:
        super().__init__(max_keep_ckpts=-1, **kwargs)
        self.save_frozen_weights = save_frozen_weights
        self.keep_ckpts = max_keep_ckpts
        self.kept_steps: List[int] = []
        self._frozen_record: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Leave the frozen weights out, recording their fingerprint."""
        super().before_save_checkpoint(runner, checkpoint)
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if self.save_frozen_weights or not frozen_parameters(model) or \
                getattr(model, 'save_clip_weights', False):
            return
        if self._frozen_record is None:
            self._frozen_record = frozen_weights_record(model)
        checkpoint['state_dict'] = strip_frozen_weights(
            model, checkpoint['state_dict'])
        checkpoint.setdefault('meta', {})[FROZEN_WEIGHTS_META] = dict(
            self._frozen_record)

    def before_train(self, runner) -> None:
        if self.backend_args is None and self.file_client_args is None and \
                not is_remote_path(self.out_dir or runner.work_dir):
            self.backend_args = dict(backend='atomic_local')
        super().before_train(runner)
        # Stored in the checkpoints, so a resumed run keeps counting.
        self.kept_steps = list(
            runner.message_hub.get_info('keep_ckpt_ids') or [])
        self._remove_old_checkpoints()
        if not is_main_process():
            return
        removed = [path for folder in {runner.work_dir, self.out_dir}
                   for path in remove_stale_temporaries(folder)]
        if removed:
            runner.logger.info(f'Removed {len(removed)} temporary file(s) '
                               f'of killed runs: {removed}')

    def after_train_epoch(self, runner) -> None:
        saves = saves_now(self, runner, by_epoch=True)
        self._checked_save(runner, runner.epoch + 1 if saves else None,
                           super().after_train_epoch, runner)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        saves = saves_now(self, runner, by_epoch=False)
        self._checked_save(runner, runner.iter + 1 if saves else None,
                           super().after_train_iter, runner, batch_idx,
                           data_batch, outputs)

    def after_val_epoch(self, runner, metrics) -> None:
        # A new best checkpoint saves the latest one again (same step).
        self._checked_save(runner, None, super().after_val_epoch, runner,
                           metrics)

    def _checked_save(self, runner, step: Optional[int], save: Callable,
                      *args) -> None:
        """``save(*args)``, then record ``last_checkpoint`` and remove the
        checkpoints beyond ``max_keep_ckpts``."""
        if step is not None and self.keep_ckpts > 0:
            if not self.kept_steps or self.kept_steps[-1] != step:
                self.kept_steps.append(step)
            # In the message hub before the save: the checkpoint holds it.
            runner.message_hub.update_info(
                'keep_ckpt_ids', self.kept_steps[-self.keep_ckpts:])
        before = self.last_ckpt
        try:
            save(*args)
        except OSError as e:
            path = self.last_ckpt if self.last_ckpt != before else \
                (e.filename or 'a checkpoint')
            raise OSError(
                e.errno, f'could not write the checkpoint {path} '
                f'({e.strerror or e}); the earlier checkpoints and '
                f'last_checkpoint are unchanged') from e
        if self.last_ckpt is None or (step is None
                                      and self.last_ckpt == before):
            return
        if is_main_process():
            # mmengine writes it with a plain open, which a kill can empty.
            atomic_write(
                str(self.last_ckpt).encode('utf-8'),
                osp.join(runner.work_dir, 'last_checkpoint'))
        self._remove_old_checkpoints()

    def _remove_old_checkpoints(self) -> None:
        """Remove the oldest checkpoints beyond ``max_keep_ckpts``."""
        while self.keep_ckpts > 0 and len(self.kept_steps) > self.keep_ckpts:
            old = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(
                    self.kept_steps.pop(0)))
            if is_main_process() and self.file_backend.isfile(old):
                self.file_backend.remove(old)
