"""Case 11: a step on cached teacher logits versus running the teacher."""
import os.path as osp
import tempfile
from typing import Any, Dict

import numpy as np
import torch
from mmpretrain.structures import DataSample

from mmpromptkd.teacher_cache import TeacherLogitCache
from ..common import (Bench, make_optimizer, make_step, print_table,
                      set_classes, time_interleaved)

# Views written per storage to measure a cache's bytes per view.
_VIEWS, _IMAGES, _TOPK = 2, 64, 20


def cache_bytes_per_view(num_classes: int, text_dim: int) -> Dict[str, float]:
    """Bytes per view of each storage, measured on a written cache.

    Args:
        num_classes (int): Classes.
        text_dim (int): Text feature size (stored once, not per view).

    Returns:
        dict[str, float]: Per storage, the bytes of the per-view arrays
        (crops, flips, logits; without the 128-byte file headers) divided
        by the views.
    """
    sizes = {}
    rng = np.random.default_rng(0)
    names = [f'c{i}' for i in range(num_classes)]
    with tempfile.TemporaryDirectory() as tmp:
        for storage in ('float32', 'float16', 'topk'):
            topk = min(_TOPK, num_classes - 1) if storage == 'topk' else None
            cache = TeacherLogitCache.create(
                osp.join(tmp, storage), _VIEWS, _IMAGES, names,
                rng.normal(size=(num_classes, text_dim)), storage=storage,
                topk=topk)
            for view in range(_VIEWS):
                cache.put(view, range(_IMAGES), [(0, 0, 1, 1)] * _IMAGES,
                          [False] * _IMAGES,
                          rng.normal(size=(_IMAGES, num_classes)))
            cache = cache.commit()
            per_view = sum(array.nbytes
                           for name, array in cache.arrays.items()
                           if name != 'text_features')
            sizes[storage] = per_view / (_VIEWS * _IMAGES)
    return sizes


def bench_teacher_cache(bench: Bench) -> Dict[str, Any]:
    """Step time on cached teacher logits versus with the teacher."""
    model, out, rows = bench.model, {}, []
    for num in bench.args.classes:
        set_classes(model, bench.names[:num])
        inputs = bench.batch()
        with torch.no_grad():
            logits = model.teacher_logits(inputs, model.text_features)
        samples = [DataSample(teacher_logits=row) for row in logits]
        with torch.no_grad():  # one state, both ways: the same loss
            online_loss = model(inputs, mode='loss')['loss_kd'].item()
            difference = abs(online_loss - model(
                inputs, samples, mode='loss')['loss_kd'].item()) / max(
                    abs(online_loss), 1e-12)
        bench.reset()
        steps = dict(
            online=make_step(model, make_optimizer(model), inputs),
            cached=make_step(
                model, make_optimizer(model), inputs, data_samples=samples))
        # What recording costs per batch: the teacher's forward alone.
        timed = time_interleaved(
            dict(steps,
                 teacher=lambda: model.teacher_logits(
                     inputs, model.text_features)), bench.args.iters,
            bench.args.warmup, bench.device)
        online, cached = timed['online'], timed['cached']
        record = timed
        sizes = cache_bytes_per_view(num, model.text_features.shape[1])
        fig = dict(
            online=online,
            cached=cached,
            speedup=online['median_ms'] / cached['median_ms'],
            teacher_forward=record['teacher'],
            bytes_per_view=sizes,
            loss_rel_difference=difference)
        out[str(num)] = fig
        rows.append([
            num, online['median_ms'], cached['median_ms'],
            f'{fig["speedup"]:.2f}x', record['teacher']['median_ms'],
            sizes['float32'], sizes['float16'], sizes['topk']
        ])
    print_table(
        '11. Training step: cached teacher logits vs running the teacher', [
            'classes', 'teacher+student ms', 'student-only ms', 'ratio',
            'teacher fwd ms', 'B/view f32', 'B/view f16',
            f'B/view top-{_TOPK}'
        ], rows, [
            f'batch {bench.args.batch_size}; forward + backward + SGD step; '
            'ratio = with the teacher / on cached logits (the same logits)',
            'teacher fwd: the per-batch cost of recording the cache once; '
            'bytes per view: crop + flip + logits as written by '
            'TeacherLogitCache'
        ])
    return out
