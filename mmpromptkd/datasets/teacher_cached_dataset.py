"""A training set whose views and teacher logits come from a cache."""
import copy
import json
from typing import Any, Iterator, Optional, Tuple

import numpy as np
import torch

from mmpromptkd.registry import DATASETS
from .teacher_logit_cache import (TeacherCacheError, TeacherLogitCache,
                                  sample_paths)
from .teacher_cache_fingerprints import first_difference, sample_fingerprints
from .transforms.view_replay import replay_view

VIEW_CHOICES = ('recorded', 'random')

# What a random transform of a pipeline becomes for recording and replay.
_REPLAYABLE = {
    'RandomResizedCrop': 'mmpromptkd.ReplayableRandomResizedCrop',
    'mmpretrain.RandomResizedCrop': 'mmpromptkd.ReplayableRandomResizedCrop',
    'RandomFlip': 'mmpromptkd.ReplayableRandomFlip',
    'mmcv.RandomFlip': 'mmpromptkd.ReplayableRandomFlip',
    'mmpretrain.RandomFlip': 'mmpromptkd.ReplayableRandomFlip',
}
# Transforms that draw nothing, so a replayed view is the recorded one.
_DETERMINISTIC = {
    'LoadImageFromFile', 'mmpromptkd.LoadImageFromFileSafe',
    'LoadImageFromFileSafe', 'PackInputs', 'Resize', 'ResizeEdge',
    'CenterCrop', 'ToTensor', 'ImageToTensor', 'Normalize'
}


def replayable_dataset_config(dataset: dict) -> dict:
    """A copy of a dataset config whose views can be recorded and replayed.

    Every ``pipeline`` in the config (also inside wrappers) gets
    :class:`ReplayableRandomResizedCrop` and :class:`ReplayableRandomFlip`
    in place of mmpretrain's and mmcv's transforms (which draw the same
    numbers), and ``PackInputs`` keeps ``view_crop`` and ``flip`` in the
    metainfo of each sample.

    Args:
        dataset (dict): A dataset config.

    Returns:
        dict: The converted copy.

    Raises:
        TeacherCacheError: If a pipeline has a transform that may draw
            random numbers other than one crop and one flip (a replayed view
            would then differ from the recorded one).
    """
    dataset = copy.deepcopy(dataset)
    for node, key in list(_pipeline_slots(dataset)):
        node[key] = _replayable_pipeline(node[key])
    return dataset


def _pipeline_slots(node: Any) -> Iterator[Tuple[dict, str]]:
    """``(config, 'pipeline')`` of every pipeline list in a config tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'pipeline' and isinstance(value, list):
                yield node, key
            else:
                yield from _pipeline_slots(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _pipeline_slots(value)


def _replayable_pipeline(pipeline: list) -> list:
    converted, seen = [], set()
    for step in pipeline:
        if not isinstance(step, dict) or 'type' not in step:
            raise TeacherCacheError(
                f'a teacher cache needs a pipeline of transform configs, '
                f'got {step!r}')
        step = dict(step)
        kind = step['type']
        kind = kind if isinstance(kind, str) else getattr(
            kind, '__name__', repr(kind))
        new = _REPLAYABLE.get(kind, kind)
        if new.startswith('mmpromptkd.Replayable'):
            if new in seen:
                raise TeacherCacheError(
                    f'the pipeline has more than one {kind}: a view records '
                    'one crop and one flip')
            seen.add(new)
        elif kind not in _DETERMINISTIC:
            raise TeacherCacheError(
                f'transform {kind!r} of the training pipeline is not known '
                'to draw nothing: a teacher cache replays only one '
                'RandomResizedCrop and one RandomFlip, so a view with it '
                'would differ from the recorded one')
        step['type'] = new
        if kind == 'PackInputs':
            keys = step.get('meta_keys', ('sample_idx', 'img_path',
                                          'ori_shape', 'img_shape',
                                          'scale_factor', 'flip',
                                          'flip_direction'))
            step['meta_keys'] = tuple(keys) + tuple(
                k for k in ('sample_idx', 'view_crop', 'flip')
                if k not in keys)
        converted.append(step)
    return converted


def pipeline_signature(dataset: dict) -> str:
    """The pipelines of a (replayable) dataset config, as a JSON string.

    Args:
        dataset (dict): A dataset config.

    Returns:
        str: Every ``pipeline`` found, in order, as JSON.
    """
    found = [node[key] for node, key in _pipeline_slots(dataset)]
    return json.dumps(found, sort_keys=True, default=repr)


@DATASETS.register_module()
class TeacherCachedDataset:
    """Training images as recorded views, with the teacher's logits.

    Wraps the training set that a teacher cache was recorded on
    (``tools/misc/cache_teacher_logits.py``): each sample replays a recorded
    view (crop and flip) of its image and carries the teacher's logits for
    that view in its data sample (``teacher_logits``), which the distiller
    uses instead of running the teacher. The cache also gives the teacher's
    text features (:attr:`teacher_text_features`), so a run with it needs no
    teacher (``model.teacher=None``).

    Views, per ``views``:

    - ``'recorded'``: epoch ``e`` replays the ``e``-th recorded view of each
      image. With the seed the cache was recorded with, the run sees the
      same images as a run with the teacher (the same crops and flips, the
      same batches), so the student is that run's student to float
      rounding. Runs with other seeds shuffle the images differently, but
      every image's view at epoch ``e`` is still the recorded one. Needs
      :class:`EpochSeedHook` (it gives the epoch), and at most as many
      epochs as recorded views.
    - ``'random'``: each sample draws one of its image's recorded views
      with the pipeline's random generator, as fast knowledge-distillation
      frameworks do: other seeds draw other views of the pool, for any
      number of epochs, but an image is only ever seen in its recorded
      views (online augmentation draws a new crop every time).

    The dataset must be the one recorded (the same images, classes and
    pipeline): a difference is an error naming it.

    Args:
        dataset (dict): Config of the training set, as in the config the
            cache was recorded with (its random crop and flip are replaced
            by replayable ones, see :func:`replayable_dataset_config`).
        cache (str): The cache folder.
        views (str): 'recorded' or 'random'. Defaults to 'recorded'.
    """

    def __init__(self, dataset: dict, cache: str,
                 views: str = 'recorded') -> None:
        if views not in VIEW_CHOICES:
            raise ValueError(f'views must be one of {VIEW_CHOICES}, got '
                             f'{views!r}')
        if not isinstance(dataset, dict):
            raise TypeError('TeacherCachedDataset needs the config of the '
                            'training set (a dict), to make its views '
                            f'replayable; got {type(dataset).__name__}')
        replayable = replayable_dataset_config(dataset)
        self.dataset = DATASETS.build(replayable)
        self.cache = TeacherLogitCache.open(cache)
        self.views = views
        # In shared memory: dataloader workers, persistent ones included,
        # read the epoch that the main process sets (-1: not set yet).
        self._epoch = torch.full((), -1, dtype=torch.long).share_memory_()
        self._check(pipeline_signature(replayable))

    def _check(self, pipeline: str) -> None:
        cache, path = self.cache, self.cache.path
        classes = tuple(self.dataset.metainfo.get('classes') or ())
        if classes != cache.class_names:
            raise TeacherCacheError(
                f'{path} was recorded for {len(cache.class_names)} classes, '
                f'the dataset has {len(classes)} other ones (first: '
                + first_difference(
                    [repr(c) for c in cache.class_names],
                    [repr(c) for c in classes],
                    [f'label {i}' for i in range(len(classes))]) + ')')
        if len(self.dataset) != cache.num_samples:
            raise TeacherCacheError(
                f'{path} was recorded on {cache.num_samples} images, the '
                f'dataset has {len(self.dataset)}')
        paths = sample_paths(self.dataset)
        recorded = _recorded_list(cache, 'sample_paths')
        if paths != recorded:
            i = next(i for i, (a, b) in enumerate(zip(paths, recorded))
                     if a != b)
            raise TeacherCacheError(
                f'{path}: sample {i} is {paths[i]!r} in the dataset but was '
                f'{recorded[i]!r} when recorded: not the recorded images (or '
                'not in the recorded order)')
        if pipeline != cache.meta.get('pipeline'):
            raise TeacherCacheError(
                f'{path} was recorded with the pipeline '
                f'{cache.meta.get("pipeline")}, the dataset has {pipeline}: '
                'its views would not be the recorded ones')
        changed = first_difference(
            _recorded_list(cache, 'sample_fingerprints'),
            sample_fingerprints(self.dataset, path), paths)
        if changed is not None:
            raise TeacherCacheError(
                f'{path} was recorded on other image bytes: {changed} (the '
                'images were changed or regenerated after recording)')
        if 'ReplayableRandomResizedCrop' in pipeline:
            uncropped = np.argwhere(cache.arrays['crops'][..., 0] < 0)
            if len(uncropped):
                view, sample = (int(v) for v in uncropped[0])
                raise TeacherCacheError(
                    f'{path}/crops.npy: view {view} of sample {sample} has '
                    'no crop, but the pipeline crops every view: the '
                    'recorded view is lost')

    # ------------------------------------------------------------------ #
    @property
    def metainfo(self) -> dict:
        """dict: The wrapped dataset's metainfo."""
        return copy.deepcopy(self.dataset.metainfo)

    @property
    def teacher_text_features(self) -> torch.Tensor:
        """Tensor: The teacher's text features the logits were made with."""
        return torch.from_numpy(np.array(self.cache.text_features))

    def full_init(self) -> None:
        """Initialise the wrapped dataset (built already)."""
        self.dataset.full_init()

    def get_data_info(self, idx: int) -> dict:
        """The wrapped dataset's data info of sample ``idx``."""
        return self.dataset.get_data_info(idx)

    def set_epoch(self, epoch: int) -> None:
        """Select the recorded views of ``epoch`` (called by EpochSeedHook).

        Args:
            epoch (int): Completed epochs.
        """
        if self.views == 'recorded' and epoch >= self.cache.num_views:
            raise TeacherCacheError(
                f'{self.cache.path} holds {self.cache.num_views} recorded '
                f'view(s) per image (epochs 0-{self.cache.num_views - 1}); '
                f'epoch {epoch} has none: record more epochs or use '
                "views='random'")
        self._epoch.fill_(epoch)

    @property
    def epoch(self) -> Optional[int]:
        """int or None: The epoch set by :meth:`set_epoch`, if any."""
        epoch = int(self._epoch)
        return None if epoch < 0 else epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def _view_index(self) -> int:
        if self.views == 'random':
            # The pipeline's generator, as a random transform draws: seeded
            # per epoch (EpochSeedHook) or per dataloader worker.
            return int(np.random.randint(self.cache.num_views))
        epoch = self.epoch
        if epoch is None:
            raise RuntimeError(
                "TeacherCachedDataset(views='recorded') needs the epoch: add "
                "dict(type='mmpromptkd.EpochSeedHook') to custom_hooks")
        return epoch

    def __getitem__(self, idx: int) -> dict:
        view = self._view_index()
        crop, flip, logits = self.cache.view(view, idx)
        with replay_view(crop, flip):
            data = self.dataset[idx]
        sample = data['data_samples']
        if crop is not None and sample.metainfo.get('view_crop') != crop:
            raise TeacherCacheError(
                f'sample {idx}: the pipeline did not replay the recorded '
                'crop (is a ReplayableRandomResizedCrop in it?)')
        sample.set_field(torch.from_numpy(logits), 'teacher_logits')
        return data


def _recorded_list(cache: TeacherLogitCache, key: str) -> list:
    """A per-sample list of ``meta.json``, checked for its length."""
    recorded = cache.meta.get(key)
    if not isinstance(recorded, list) or \
            len(recorded) != cache.num_samples or \
            not all(isinstance(v, str) for v in recorded):
        raise TeacherCacheError(
            f'{cache.path}/meta.json: "{key}" must list one string per '
            f'recorded image ({cache.num_samples}), got '
            f'{type(recorded).__name__}'
            + (f' of {len(recorded)}' if isinstance(recorded, list) else ''))
    return recorded
