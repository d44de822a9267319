"""Base-to-novel accuracy and its harmonic mean."""
import logging
import math
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from mmpromptkd.registry import METRICS


def _warn(message: str) -> None:
    print_log(f'BaseNovelAccuracy: {message}', logger='current',
              level=logging.WARNING)


@METRICS.register_module()
class BaseNovelAccuracy(BaseMetric):
    """Base, novel and harmonic-mean accuracy of the base-to-novel protocol.

    Classes ``0 .. m-1`` of the ``n`` scored are base, ``m .. n-1`` novel.
    In percent: ``base`` and ``novel`` (each split's images, argmax over its
    columns), ``hm`` (their harmonic mean) and ``all`` (over all columns);
    a split without images is omitted with a warning, and so is ``hm``.

    Args:
        num_base_classes (int, optional): ``m``; by default
            ``dataset_meta['num_base_classes']``, else ``ceil(n / 2)``.
        score_key (str): ``'pred_score'`` (the model's) or
            ``'teacher_score'`` (a distiller's teacher).
        **kwargs: ``collect_device``, ``prefix`` (``'b2n'``) and
            ``collect_dir``, as for mmengine's ``BaseMetric``.
    """
    default_prefix: Optional[str] = 'b2n'

    def __init__(self, num_base_classes: Optional[int] = None, *,
                 score_key: str = 'pred_score', **kwargs) -> None:
        super().__init__(**kwargs)
        if num_base_classes is not None and (
                isinstance(num_base_classes, bool)
                or not isinstance(num_base_classes, int)
                or num_base_classes < 0):
            raise ValueError('num_base_classes must be a non-negative int or '
                             f'None, got {num_base_classes!r}.')
        self.num_base_classes = num_base_classes
        if score_key not in ('pred_score', 'teacher_score'):
            raise ValueError("score_key must be 'pred_score' or "
                             f"'teacher_score', got {score_key!r}")
        self.score_key = score_key

    def _resolve_num_base(self, num_classes: int) -> int:
        """Number of base classes for scores with ``num_classes`` columns."""
        m = self.num_base_classes
        if m is None and self.dataset_meta:
            m = self.dataset_meta.get('num_base_classes', None)
        if m is None:
            m = math.ceil(num_classes / 2)
        if not 0 <= m <= num_classes:
            raise ValueError(
                f'num_base_classes must be in [0, {num_classes}] for scores '
                f'over {num_classes} classes, got {m}.')
        return int(m)

    def process(self, data_batch: Any, data_samples: Sequence) -> None:
        for sample in data_samples:
            score = sample.get(self.score_key, None)
            label = sample.get('gt_label', None)
            if score is None or label is None:
                raise ValueError(f'BaseNovelAccuracy needs `{self.score_key}` '
                                 'and `gt_label` in every data sample.')
            label = torch.as_tensor(label)
            if label.numel() != 1:
                raise ValueError('BaseNovelAccuracy expects exactly one label '
                                 'per sample, got gt_label of shape '
                                 f'{tuple(label.shape)}.')
            score = torch.as_tensor(score).detach().reshape(-1)
            n = score.numel()
            m = self._resolve_num_base(n)
            # -1: that split has no column (and no sample, see below).
            self.results.append(dict(
                gt_label=int(label.item()), num_classes=n, num_base_classes=m,
                pred_all=int(score.argmax()),
                pred_base=int(score[:m].argmax()) if m > 0 else -1,
                pred_novel=int(score[m:].argmax()) + m if m < n else -1))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if not results:
            _warn('no samples to evaluate.')
            return {}
        splits = {(r['num_classes'], r['num_base_classes']) for r in results}
        if len(splits) != 1:
            raise ValueError('All samples must have scores over the same '
                             f'classes and split; got (n, m) in {splits}.')
        n, m = splits.pop()
        for r in results:
            if not 0 <= r['gt_label'] < n:
                raise ValueError(f'gt_label {r["gt_label"]} is outside the '
                                 f'{n} scored classes.')
        metrics: Dict[str, float] = {}
        for name, is_base in (('base', True), ('novel', False)):
            split = [r for r in results if (r['gt_label'] < m) == is_base]
            if not split:
                _warn(f'no {name}-class samples; `{name}` and `hm` are not '
                      'reported.')
                continue
            correct = sum(r[f'pred_{name}'] == r['gt_label'] for r in split)
            metrics[name] = 100.0 * correct / len(split)
        if 'base' in metrics and 'novel' in metrics:
            b, nv = metrics['base'], metrics['novel']
            metrics['hm'] = 2 * b * nv / (b + nv) if b + nv > 0 else 0.0
        correct = sum(r['pred_all'] == r['gt_label'] for r in results)
        metrics['all'] = 100.0 * correct / len(results)
        return metrics
