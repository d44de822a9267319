"""A training set whose views and teacher logits come from caches."""
import copy
import json
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

from mmpromptkd.datasets.transforms.view_replay import replay_view
from mmpromptkd.models.distillers.teacher_ensemble import EnsembleCombination
from mmpromptkd.models.utils.input_normalization import (
    same_normalization, teacher_input_normalization)
from mmpromptkd.models.utils.teacher_provenance import ensemble_record
from mmpromptkd.registry import DATASETS
from mmpromptkd.utils.differences import first_difference
from .fingerprints import sample_fingerprints
from .logit_cache import TeacherCacheError, TeacherLogitCache, sample_paths
from .replay import pipeline_signature, replayable_dataset_config

VIEW_CHOICES = ('recorded', 'random')


@DATASETS.register_module()
class TeacherCachedDataset:
    """Training images as recorded views, with the teacher's logits.

    Each sample replays a recorded view (crop and flip) of its image and
    carries the teacher's logits (``teacher_logits``); the cache gives the
    text features, so no teacher is built. The dataset must be the recorded
    one (``docs/teacher_cache.md``, ``docs/teacher_ensembles.md``).

    Args:
        dataset (dict): Config of the training set as recorded.
        cache (str | list[str]): The cache folder, or one per member.
        views (str): 'recorded' (needs ``EpochSeedHook``) or 'random'.
        ensemble (dict, optional): The ``TeacherEnsemble`` of the caches.
    """

    def __init__(self,
                 dataset: dict,
                 cache: Union[str, Sequence[str]],
                 views: str = 'recorded',
                 ensemble: Optional[dict] = None) -> None:
        if views not in VIEW_CHOICES:
            raise ValueError(f'views must be one of {VIEW_CHOICES}, got '
                             f'{views!r}')
        if not isinstance(dataset, dict):
            raise TypeError('TeacherCachedDataset needs the config of the '
                            'training set (a dict), to make its views '
                            f'replayable; got {type(dataset).__name__}')
        paths = [cache] if isinstance(cache, str) else list(cache)
        self.combination = None
        if ensemble is not None:
            if not isinstance(ensemble, dict) or not str(
                    ensemble.get('type', '')).endswith('TeacherEnsemble'):
                raise TypeError(
                    'TeacherCachedDataset.ensemble must be a '
                    f"dict(type='TeacherEnsemble', ...), got {ensemble!r}")
            try:
                self.combination = EnsembleCombination.from_config(**{
                    k: v for k, v in dict(ensemble).items()
                    if k not in ('type', '_scope_', 'text_batch_size')})
            except TypeError as e:
                raise ValueError(
                    f'TeacherCachedDataset.ensemble: {e}') from None
        if self.combination is None and len(paths) != 1:
            raise ValueError(
                f'TeacherCachedDataset.cache lists {len(paths)} caches: '
                'caches of ensemble members need ensemble=<the '
                'TeacherEnsemble config>')
        if self.combination is not None and \
                len(paths) != len(self.combination.members):
            raise ValueError(
                f'TeacherCachedDataset.cache lists {len(paths)} caches for '
                f'the {len(self.combination.members)} members of the '
                'ensemble: record one per member (--member i)')
        replayable = replayable_dataset_config(dataset)
        self.dataset = DATASETS.build(replayable)
        self.caches = [TeacherLogitCache.open(p) for p in paths]
        self.views = views
        # In shared memory: dataloader workers, persistent ones included,
        # read the epoch that the main process sets (-1: not set yet).
        self._epoch = torch.full((), -1, dtype=torch.long).share_memory_()
        self._check(pipeline_signature(replayable))

    @property
    def cache(self) -> TeacherLogitCache:
        """TeacherLogitCache: The cache of the views and text features."""
        index = 0 if self.combination is None else \
            self.combination.text_member
        return self.caches[index]

    def _check(self, pipeline: str) -> None:
        classes = tuple(self.dataset.metainfo.get('classes') or ())
        paths = sample_paths(self.dataset)
        sample_names = [f'sample {j}' for j in range(len(paths))]
        images = None  # hashed once, when the first cache needs them
        for i, cache in enumerate(self.caches):
            path = cache.path
            if classes != cache.class_names:
                raise TeacherCacheError(
                    f'{path} was recorded for {len(cache.class_names)} '
                    f'classes, the dataset has {len(classes)} other ones '
                    '(first: ' + first_difference(
                        [repr(c) for c in cache.class_names],
                        [repr(c) for c in classes],
                        [f'label {i}' for i in range(len(classes))]) + ')')
            if len(self.dataset) != cache.num_samples:
                raise TeacherCacheError(
                    f'{path} was recorded on {cache.num_samples} images, the '
                    f'dataset has {len(self.dataset)}')
            moved = first_difference(
                _recorded_list(cache, 'sample_paths'), paths, sample_names)
            if moved is not None:
                raise TeacherCacheError(
                    f'{path}: {moved}: not the recorded images (or not in '
                    'the recorded order)')
            if pipeline != cache.meta.get('pipeline'):
                raise TeacherCacheError(
                    f'{path} was recorded with the pipeline '
                    f'{cache.meta.get("pipeline")}, the dataset has '
                    f'{pipeline}: its views would not be the recorded ones')
            if images is None:
                images = sample_fingerprints(self.dataset, path)
            changed = first_difference(
                _recorded_list(cache, 'sample_fingerprints'), images, paths)
            if changed is not None:
                raise TeacherCacheError(
                    f'{path} was recorded on other image bytes: {changed} '
                    '(the images were changed or regenerated after '
                    'recording)')
            if 'ReplayableRandomResizedCrop' in pipeline:
                uncropped = np.argwhere(cache.arrays['crops'][..., 0] < 0)
                if len(uncropped):
                    view, sample = (int(v) for v in uncropped[0])
                    raise TeacherCacheError(
                        f'{path}/crops.npy: view {view} of sample {sample} '
                        'has no crop, but the pipeline crops every view: '
                        'the recorded view is lost')
            self._check_member(i, cache)

    def _check_member(self, index: int, cache: TeacherLogitCache) -> None:
        """Refuse a cache of another member, or of other views."""
        member = cache.meta.get('ensemble_member')
        if self.combination is None:
            if member is not None:
                raise TeacherCacheError(
                    f'{cache.path} holds the logits of '
                    f'members[{member.get("index")}] of a teacher ensemble: '
                    'train it with '
                    'ensemble=<that TeacherEnsemble config>')
            return
        expected = self.combination.members[index]
        if not isinstance(member, dict) or any(
                _canonical(member.get(k)) != _canonical(expected[k])
                for k in ('teacher', 'normalization')):
            recorded = 'a single teacher' if not isinstance(member, dict) \
                else (f'members[{member.get("index")}], '
                      f'{_describe_member(member)}')
            raise TeacherCacheError(
                f'cache[{index}] {cache.path} was recorded for {recorded}, '
                f'but ensemble.members[{index}] is '
                f'{_describe_member(expected)}: give one cache per member, '
                'in the order of the members, each recorded with '
                f'tools/misc/cache_teacher_logits.py --member {index}')
        first = self.caches[0]
        for key in ('num_views', 'seed', 'tau'):
            if cache.meta.get(key) != first.meta.get(key):
                raise TeacherCacheError(
                    f'{cache.path} was recorded with {key}='
                    f'{cache.meta.get(key)!r}, {first.path} with '
                    f'{first.meta.get(key)!r}: the members\' caches must '
                    'record the same views at the same temperature')
        for name in ('crops', 'flips'):
            if not np.array_equal(cache.arrays[name], first.arrays[name]):
                raise TeacherCacheError(
                    f'{cache.path}/{name}.npy differs from {first.path}: the '
                    'members were recorded on other views')
        tau = self.combination.taus[index]
        if cache.storage == 'topk' and tau is not None and \
                tau != cache.meta['tau']:
            raise TeacherCacheError(
                f'{cache.path} keeps the top-{cache.meta["topk"]} logits with '
                f'the rest\'s mass at tau={cache.meta["tau"]}; '
                f'ensemble.members[{index}].tau is {tau}: record it with '
                'float16 or float32 logits')

    def training_text_features(
            self, model) -> Tuple[torch.Tensor, Optional[dict]]:
        """The recorded text features (C, D) and teacher record, once the
        distiller ``model`` is checked to train as recorded."""
        cache = self.cache
        tau = getattr(getattr(model, 'distill_loss', None), 'tau', None)
        # Top-k caches spread the rest's mass at the recorded tau, and an
        # ensemble mixes its members at it.
        if tau is not None and tau != cache.meta['tau'] and (
                cache.storage == 'topk' or self.combination is not None):
            what = (f'keeps the top-{cache.meta["topk"]} logits with the '
                    'rest\'s mass' if self.combination is None else
                    'was mixed from its members\' logits')
            raise ValueError(
                f'{cache.path} {what} at tau={cache.meta["tau"]}; the loss '
                f'has tau={tau}: record the cache at that tau')
        features = torch.from_numpy(np.array(cache.text_features))
        if self.combination is None:
            check_teacher_input(cache, model)
            return features, cache.meta.get('teacher')
        members = [c.meta.get('teacher') for c in self.caches]
        if not all(isinstance(m, dict) and 'sha256' in m for m in members):
            return features, None
        return features, ensemble_record(self.combination.record(), members)

    @property
    def metainfo(self) -> dict:
        """dict: The wrapped dataset's metainfo."""
        return copy.deepcopy(self.dataset.metainfo)

    def full_init(self) -> None:
        """Initialise the wrapped dataset."""
        self.dataset.full_init()

    def get_data_info(self, idx: int) -> dict:
        """The wrapped dataset's data info of sample ``idx``."""
        return self.dataset.get_data_info(idx)

    def set_epoch(self, epoch: int) -> None:
        """Select the recorded views of ``epoch`` (from EpochSeedHook)."""
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

    def __getitem__(self, idx: int) -> dict:
        # 'random': the pipeline's generator, as a random transform draws:
        # seeded per epoch (EpochSeedHook) or per dataloader worker.
        view = int(np.random.randint(self.cache.num_views)) \
            if self.views == 'random' else self.epoch
        if view is None:
            raise RuntimeError(
                "TeacherCachedDataset(views='recorded') needs the epoch: add "
                "dict(type='mmpromptkd.EpochSeedHook') to custom_hooks")
        crop, flip, logits = self.cache.view(view, idx)
        if self.combination is not None:
            members = [torch.from_numpy(logits if c is self.cache else
                                        c.view(view, idx)[2])[None]
                       for c in self.caches]
            logits = self.combination.combine(
                members, self.cache.meta['tau'])[0].numpy()
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


def check_teacher_input(cache: TeacherLogitCache, model) -> None:
    """Refuse a cache whose ``teacher_input`` normalisation is not the one
    ``model`` would give the teacher."""
    recorded = cache.meta.get('teacher_input')
    now = teacher_input_normalization(
        model.data_preprocessor, getattr(model, 'teacher_normalization',
                                         None))
    if recorded is None:
        raise ValueError(
            f'{cache.path} does not record how the teacher\'s images were '
            'normalised (recorded by an older version): record it again '
            'with tools/misc/cache_teacher_logits.py')
    valid = isinstance(recorded, dict) and set(recorded) == {
        'mean', 'std'
    } and all(
        isinstance(v, list) and len(v) == 3 and all(
            type(x) in (int, float) for x in v) for v in recorded.values())
    if not (valid and same_normalization(recorded, now)):
        raise ValueError(
            f'{cache.path} was recorded from teacher images normalised with '
            f'{recorded} (0-255 scale); this run would give the teacher '
            f'{now}: set model.data_preprocessor and '
            'model.teacher_normalization as when it was recorded, or record '
            'the cache again')


def _canonical(value) -> str:
    """A config value as JSON, for comparing recorded with configured."""
    return json.dumps(value, sort_keys=True, default=repr)


def _describe_member(member: dict) -> str:
    teacher = member.get('teacher') or {}
    clip = teacher.get('clip') or {}
    weights = clip.get('checkpoint') or clip.get('pretrained') or \
        clip.get('model_name')
    return (f'{teacher.get("type")} with CLIP {weights!r} and prompts '
            f'from {teacher.get("checkpoint")!r}')
