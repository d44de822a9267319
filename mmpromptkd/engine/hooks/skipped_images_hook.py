"""Enable and report the skipping of unreadable training images."""
from typing import List

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook

from mmpromptkd.datasets.dataset_wrappers import iter_wrapped_datasets
from mmpromptkd.datasets.transforms import LoadImageFromFileSafe
from mmpromptkd.registry import HOOKS

# Paths listed per process and epoch; the count is always complete.
_MAX_LISTED = 20


@HOOKS.register_module()
class SkippedImagesHook(Hook):
    """Let the training pipeline's :class:`LoadImageFromFileSafe` with
    ``on_error='skip'`` skip unreadable images (evaluation ones stay an
    error); log every epoch's count and store it as ``skipped_images``.
    """

    priority = 'NORMAL'

    def __init__(self) -> None:
        self._loaders: List[LoadImageFromFileSafe] = []

    def before_train(self, runner) -> None:
        self._loaders = [
            transform for current in iter_wrapped_datasets(
                runner.train_dataloader.dataset)
            for transform in getattr(getattr(current, 'pipeline', None),
                                     'transforms', None) or []
            if isinstance(transform, LoadImageFromFileSafe)]
        if not self._loaders:
            runner.logger.warning(
                'SkippedImagesHook: the training pipeline has no '
                'LoadImageFromFileSafe transform; nothing is skipped or '
                'counted')
        for loader in self._loaders:
            if loader.on_error == 'skip':
                loader.skip_enabled = True
            loader.reset_skipped()

    def after_train_epoch(self, runner) -> None:
        if not self._loaders:
            return
        local = sum(loader.skipped_count for loader in self._loaders)
        paths = [p for loader in self._loaders for p in loader.skipped_paths]
        count = torch.tensor([local], dtype=torch.int64)
        all_reduce(count)  # nothing to do in a single process
        total = int(count.item())
        runner.message_hub.update_info('skipped_images', total)
        epoch = runner.epoch + 1
        if total == 0:
            runner.logger.info(f'Epoch {epoch}: no unreadable image skipped')
        else:
            listed = ', '.join(paths[:_MAX_LISTED])
            if len(paths) > _MAX_LISTED:
                listed += f' and {len(paths) - _MAX_LISTED} more'
            runner.logger.warning(
                f'Epoch {epoch}: skipped {total} unreadable image(s) in '
                f'all processes; {local} in this process'
                + (f': {listed}' if listed else ''))
        for loader in self._loaders:
            loader.reset_skipped()
