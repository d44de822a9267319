"""Stop a run whose training data is empty, has a class without images, or
has classes a teacher must not train on."""
from typing import Any, List, Sequence

import numpy as np
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch.utils.data import IterableDataset

from mmpromptkd.datasets.dataset_wrappers import unwrap_dataset
from mmpromptkd.registry import HOOKS


def find_empty_classes(dataset: Any) -> List[str]:
    """``'<name>' (label <i>)`` for every class of
    ``dataset.metainfo['classes']`` without a sample (none for a dataset
    without class names or labels)."""
    dataset = unwrap_dataset(dataset)
    classes: Sequence[str] = (getattr(dataset, 'metainfo', None)
                              or {}).get('classes') or ()
    if not classes:
        return []
    if hasattr(dataset, 'get_gt_labels'):
        labels = np.asarray(dataset.get_gt_labels(), dtype=np.int64)
    else:  # every sample's gt_label, if each has one
        infos = [dataset.get_data_info(i) for i in range(len(dataset))] \
            if hasattr(dataset, 'get_data_info') else []
        if not infos or any('gt_label' not in info for info in infos):
            return []
        labels = np.asarray([info['gt_label'] for info in infos],
                            dtype=np.int64)
    counts = np.bincount(labels[labels >= 0], minlength=len(classes))
    return [f'{name!r} (label {i})' for i, name in enumerate(classes)
            if counts[i] == 0]


@HOOKS.register_module()
class EmptyClassCheckHook(Hook):
    """Refuse to train on a split that gives no batch or has a class
    without images (a broken split file or download). Evaluation splits are
    not checked: the ImageNet variants cover some classes only.
    """

    priority = 'HIGHEST'

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        dataset = loader.dataset
        name = type(unwrap_dataset(dataset)).__name__
        # A stream (UnlabeledShards) has no length; it checks itself.
        if not isinstance(dataset, IterableDataset) and len(loader) == 0:
            raise ValueError(
                f'the training split of {name} '
                f'({len(dataset)} images, {runner.world_size} process(es)) '
                f'is smaller than one batch of train_dataloader.batch_size='
                f'{loader.batch_size} with drop_last={loader.drop_last}: '
                'nothing would be trained; lower the batch size or set '
                'train_dataloader.drop_last=False')
        if empty := find_empty_classes(dataset):
            shown = ', '.join(empty[:10]) + (
                f' and {len(empty) - 10} more' if len(empty) > 10 else '')
            raise ValueError(
                f'the training split of {name} has no image of '
                f'{len(empty)} class(es): {shown}. Check the split file '
                'and the image folders.')


@HOOKS.register_module()
class TrainSubsetCheckHook(Hook):
    """Stop a teacher run that would train on the wrong classes (the
    model's ``check_training_dataset``, before the text features hook)."""

    priority = 'HIGHEST'

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'check_training_dataset'):
            raise TypeError(f'TrainSubsetCheckHook needs a model with '
                            f'check_training_dataset() (a teacher '
                            f'classifier), got {type(model).__name__}')
        dataset = runner.train_dataloader.dataset
        model.check_training_dataset(
            dict(getattr(dataset, 'metainfo', {}) or {}),
            dataset_name=type(dataset).__name__)
