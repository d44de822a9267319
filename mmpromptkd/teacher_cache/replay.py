"""Training pipelines whose random views can be recorded and replayed."""
import copy
import json
from typing import Any, Iterator, Tuple

from .logit_cache import TeacherCacheError

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
    """A copy of a dataset config whose views can be recorded and replayed:
    in every ``pipeline``, the random crop and flip become replayable ones;
    any other transform that may draw is a :class:`TeacherCacheError`."""
    dataset = copy.deepcopy(dataset)
    for node, key in list(_pipeline_slots(dataset)):
        converted, seen = [], set()
        for step in node[key]:
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
                        f'the pipeline has more than one {kind}: a view '
                        'records one crop and one flip')
                seen.add(new)
            elif kind not in _DETERMINISTIC:
                raise TeacherCacheError(
                    f'transform {kind!r} of the training pipeline is not '
                    'known to draw nothing: a teacher cache replays only one'
                    ' RandomResizedCrop and one RandomFlip, so a view with '
                    'it would differ from the recorded one')
            step['type'] = new
            if kind == 'PackInputs':
                keys = step.get('meta_keys', (
                    'sample_idx', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor', 'flip', 'flip_direction'))
                step['meta_keys'] = tuple(keys) + tuple(
                    k for k in ('sample_idx', 'view_crop', 'flip')
                    if k not in keys)
            converted.append(step)
        node[key] = converted
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


def pipeline_signature(dataset: dict) -> str:
    """Every ``pipeline`` of a dataset config, in order, as JSON."""
    found = [node[key] for node, key in _pipeline_slots(dataset)]
    return json.dumps(found, sort_keys=True, default=repr)
