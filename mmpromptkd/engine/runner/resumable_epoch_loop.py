"""An epoch-based train loop that resumes in the middle of an epoch."""
from mmengine.runner import EpochBasedTrainLoop

from mmpromptkd.compat import finish_epoch
from mmpromptkd.registry import LOOPS


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop``, resuming mid-epoch exactly: the
    batches trained before the checkpoint are drawn, not trained again,
    then the hook stage ``after_skip_trained_batches`` is called.
    """

    def run_epoch(self) -> None:
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
