"""Base-to-novel accuracy and its harmonic mean."""
import logging
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement
from torch import Tensor

from mmpromptkd.registry import METRICS


def _label_to_int(label: Any) -> int:
    """Convert a single-label ``gt_label`` (int or tensor) to an int."""
    if isinstance(label, Tensor):
        if label.numel() != 1:
            raise ValueError('BaseNovelAccuracy expects exactly one label per '
                             f'sample, got gt_label of shape '
                             f'{tuple(label.shape)}.')
        return int(label.item())
    return int(label)


@METRICS.register_module()
class BaseNovelAccuracy(BaseMetric):
    """Base, novel and harmonic-mean accuracy of the base-to-novel protocol.

    Classes ``0 .. m-1`` of the ``n`` scored are base, ``m .. n-1`` novel.
    Reported in percent: ``base`` (base images, argmax over the base
    columns), ``novel`` (novel images, argmax over the novel columns),
    ``hm`` (their harmonic mean) and ``all`` (argmax over all columns). A
    split without images is omitted with a warning, and so is ``hm``.

    Args:
        num_base_classes (int, optional): Number of base classes ``m``.
            Defaults to None: ``dataset_meta['num_base_classes']``, else
            ``ceil(n / 2)``.
        collect_device (str): Device used to collect results across ranks.
            Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to None
            (``'b2n'``).
        collect_dir (str, optional): Directory used to collect results when
            ``collect_device='cpu'``. Defaults to None.
        score_key (str): ``'pred_score'`` (the model's) or
            ``'teacher_score'`` (a distiller's teacher). Defaults to
            'pred_score'.
    """
    default_prefix: Optional[str] = 'b2n'

    def __init__(self,
                 num_base_classes: Optional[int] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None,
                 score_key: str = 'pred_score') -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
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

    def process(self, data_batch: Any,
                data_samples: Sequence[Union[BaseDataElement, dict]]) -> None:
        """Store the predictions of one batch.

        Args:
            data_batch (Any): The batch from the dataloader (unused).
            data_samples (Sequence[DataSample | dict]): Model outputs.
        """
        for sample in data_samples:
            score = sample.get(self.score_key, None)
            label = sample.get('gt_label', None)
            if score is None or label is None:
                raise ValueError(f'BaseNovelAccuracy needs `{self.score_key}` '
                                 'and `gt_label` in every data sample.')
            score = torch.as_tensor(score).detach().reshape(-1)
            n = score.numel()
            m = self._resolve_num_base(n)
            # -1: that split has no column (and no sample, see _check).
            base_pred = int(score[:m].argmax()) if m > 0 else -1
            novel_pred = (int(score[m:].argmax()) + m) if m < n else -1
            self.results.append(
                dict(
                    gt_label=_label_to_int(label),
                    num_classes=n,
                    num_base_classes=m,
                    pred_all=int(score.argmax()),
                    pred_base=base_pred,
                    pred_novel=novel_pred))

    @staticmethod
    def _check(results: List[dict]) -> Tuple[int, int]:
        """Check that all results share one class split and valid labels."""
        splits = {(r['num_classes'], r['num_base_classes']) for r in results}
        if len(splits) != 1:
            raise ValueError('All samples must have scores over the same '
                             f'classes and split; got (n, m) in {splits}.')
        n, m = splits.pop()
        for r in results:
            if not 0 <= r['gt_label'] < n:
                raise ValueError(f'gt_label {r["gt_label"]} is outside the '
                                 f'{n} scored classes.')
        return n, m

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Compute the accuracies from the stored predictions.

        Args:
            results (list[dict]): The stored predictions of all samples.

        Returns:
            dict[str, float]: ``base``, ``novel``, ``hm`` and ``all``
            accuracies in percent.
        """
        if not results:
            print_log(
                'BaseNovelAccuracy: no samples to evaluate.',
                logger='current',
                level=logging.WARNING)
            return {}
        _, m = self._check(results)

        metrics: Dict[str, float] = {}
        base = [r for r in results if r['gt_label'] < m]
        novel = [r for r in results if r['gt_label'] >= m]
        for name, split, key in (('base', base, 'pred_base'),
                                 ('novel', novel, 'pred_novel')):
            if not split:
                print_log(
                    f'BaseNovelAccuracy: no {name}-class samples; `{name}` '
                    'and `hm` are not reported.',
                    logger='current',
                    level=logging.WARNING)
                continue
            correct = sum(r[key] == r['gt_label'] for r in split)
            metrics[name] = 100.0 * correct / len(split)

        if 'base' in metrics and 'novel' in metrics:
            b, nv = metrics['base'], metrics['novel']
            metrics['hm'] = 2 * b * nv / (b + nv) if b + nv > 0 else 0.0

        correct = sum(r['pred_all'] == r['gt_label'] for r in results)
        metrics['all'] = 100.0 * correct / len(results)
        return metrics
