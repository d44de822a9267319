"""An epoch-based train loop that resumes in the middle of an epoch."""
from mmengine.runner import EpochBasedTrainLoop

from mmpromptkd.compat import finish_epoch
from mmpromptkd.registry import LOOPS

__all__ = ['ResumableEpochBasedTrainLoop']


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop``, resuming mid-epoch exactly.

    With iteration checkpoints (``default_hooks.checkpoint.by_epoch=False``)
    a resumed run restarts its epoch at the first batch in mmengine's loop,
    so the batches trained before the checkpoint are trained twice. This
    loop draws those batches from the epoch's dataloader without training
    on them (same sampler order, same augmentation draws in the main
    process and in the workers), as mmengine's ``IterBasedTrainLoop`` skips
    trained iterations, then calls the hook stage
    ``after_skip_trained_batches`` (where :class:`RandomStateHook` restores
    the generator states of the checkpoint) and continues with the next
    batch under its real index. It takes the arguments of
    ``EpochBasedTrainLoop``; select it with
    ``train_cfg = dict(type='ResumableEpochBasedTrainLoop', ...)``.
    """

    def run_epoch(self) -> None:
        """Iterate one epoch, after the batches a checkpoint already has."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        total = len(self.dataloader)
        done = self.iter - self.epoch * total
        if done > total:
            raise RuntimeError(
                f'the checkpoint is at iteration {self.iter} of epoch '
                f'{self.epoch + 1}, but an epoch now has {total} '
                'iterations: the training data or batch size changed since '
                'it was written')
        batches = iter(self.dataloader)
        done = max(done, 0)
        if done:
            for _ in range(done):
                next(batches)
            self.runner.logger.info(
                f'Resuming epoch {self.epoch + 1} after batch {done} of '
                f'{total}: skipped the batches trained before the checkpoint')
            self.runner.call_hook('after_skip_trained_batches')
        for idx, data_batch in enumerate(batches, start=done):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        finish_epoch(self)
