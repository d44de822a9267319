"""Enable and report the skipping of unreadable training images."""
from typing import Any, List

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook

from mmpromptkd.datasets.dataset_wrappers import iter_wrapped_datasets
from mmpromptkd.datasets.transforms import LoadImageFromFileSafe
from mmpromptkd.registry import HOOKS

# Paths listed per process and epoch; the count is always complete.
_MAX_LISTED = 20


def find_safe_loaders(dataset: Any) -> List[LoadImageFromFileSafe]:
    """The ``LoadImageFromFileSafe`` transforms of a dataset's pipeline.

    Dataset wrappers (``RepeatDataset``, ``ConcatDataset``, ...) are
    searched through their ``dataset`` / ``datasets`` attributes.

    Args:
        dataset (Any): A dataset.

    Returns:
        list[LoadImageFromFileSafe]: The transforms, in pipeline order.
    """
    found: List[LoadImageFromFileSafe] = []
    for current in iter_wrapped_datasets(dataset):
        pipeline = getattr(current, 'pipeline', None)
        for transform in getattr(pipeline, 'transforms', None) or []:
            if isinstance(transform, LoadImageFromFileSafe):
                found.append(transform)
    return found


@HOOKS.register_module()
class SkippedImagesHook(Hook):
    """Let training skip unreadable images, and count them every epoch.

    Before training it enables ``on_error='skip'`` of the
    :class:`LoadImageFromFileSafe` transforms in the *training* pipeline;
    validation and test pipelines are never enabled, so an unreadable
    evaluation image stays an error. After every training epoch it logs the
    number of skipped files (a warning naming this process's files when
    there are any), stores it as ``skipped_images`` in the message hub, and
    resets the count.

    The count covers data-loader workers and, in distributed runs, all
    processes (summed); the file names listed are those read in this
    process (with ``num_workers > 0`` each worker names its files in its
    own warning as it skips them).
    """

    priority = 'NORMAL'

    def __init__(self) -> None:
        self._loaders: List[LoadImageFromFileSafe] = []

    def before_train(self, runner) -> None:
        self._loaders = find_safe_loaders(runner.train_dataloader.dataset)
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
        total = local
        if get_world_size() > 1:
            count = torch.tensor([local], dtype=torch.int64)
            all_reduce(count)
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
