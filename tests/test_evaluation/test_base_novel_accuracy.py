"""Tests of the base-to-novel accuracy metric."""
import math

import pytest
import torch
from mmpretrain.structures import DataSample

import mmpromptkd  # noqa: F401  (registers the components)
from mmpromptkd.evaluation.metrics import base_novel_accuracy as bna_module
from mmpromptkd.registry import METRICS

# 5 classes: by default classes 0-2 are base (ceil(5 / 2) = 3), 3-4 novel.
# Each entry: (label, scores over all classes). Comments give the argmax
# over all columns / over the label's own split.
SAMPLES = [
    (0, [0.9, 0.1, 0.2, 0.3, 0.0]),  # all 0 (ok), base 0 (ok)
    (1, [0.1, 0.3, 0.2, 0.8, 0.1]),  # all 3 (wrong), base 1 (ok)
    (2, [0.5, 0.1, 0.4, 0.0, 0.0]),  # all 0 (wrong), base 0 (wrong)
    (3, [0.1, 0.0, 0.9, 0.6, 0.5]),  # all 2 (wrong), novel 3 (ok)
    (4, [0.0, 0.0, 0.0, 0.7, 0.2]),  # all 3 (wrong), novel 3 (wrong)
    (4, [0.2, 0.2, 0.2, 0.4, 0.4]),  # tie -> first: all 3, novel 3 (wrong)
    (0, [0.5, 0.5, 0.1, 0.2, 0.2]),  # tie -> first: all 0 (ok), base 0 (ok)
]


def _as_data_samples(samples):
    return [
        DataSample().set_gt_label(label).set_pred_score(torch.tensor(score))
        for label, score in samples
    ]


def _as_dicts(samples):
    return [
        dict(gt_label=torch.tensor([label]), pred_score=torch.tensor(score))
        for label, score in samples
    ]


def _evaluate(metric, samples, batch_size=3):
    for i in range(0, len(samples), batch_size):
        metric.process(None, samples[i:i + batch_size])
    return metric.evaluate(len(samples))


class TestBaseNovelAccuracy:

    @pytest.mark.parametrize('convert', [_as_data_samples, _as_dicts])
    def test_default_split(self, convert):
        metric = METRICS.build(dict(type='BaseNovelAccuracy'))
        results = _evaluate(metric, convert(SAMPLES))
        # base: 3 of 4 base images right; novel: 1 of 3; all: 2 of 7.
        assert set(results) == {'b2n/base', 'b2n/novel', 'b2n/hm', 'b2n/all'}
        assert results['b2n/base'] == pytest.approx(75.0)
        assert results['b2n/novel'] == pytest.approx(100 / 3)
        # 2 * 75 * (100/3) / (75 + 100/3) = 15000 / 325
        assert results['b2n/hm'] == pytest.approx(15000 / 325)
        assert results['b2n/all'] == pytest.approx(200 / 7)
        assert all(isinstance(v, float) for v in results.values())

    def test_the_teachers_scores_are_scored_with_score_key(self):
        """The same scores as teacher_score, pred_score uniform (its
        argmax, class 0, would score otherwise)."""
        samples = []
        for label, score in SAMPLES:
            sample = DataSample().set_gt_label(label).set_pred_score(
                torch.ones(5))
            sample.set_field(torch.tensor(score), 'teacher_score')
            samples.append(sample)
        metric = METRICS.build(
            dict(type='BaseNovelAccuracy', score_key='teacher_score'))
        results = _evaluate(metric, samples)
        assert results['b2n/hm'] == pytest.approx(15000 / 325)
        with pytest.raises(ValueError, match="score_key must be"):
            METRICS.build(dict(type='BaseNovelAccuracy', score_key='logits'))

    def test_explicit_num_base_classes_and_prefix(self):
        metric = METRICS.build(
            dict(type='BaseNovelAccuracy', num_base_classes=2, prefix='dtd'))
        results = _evaluate(metric, _as_dicts(SAMPLES))
        # base = classes {0, 1}: samples 1, 2, 7 all right -> 100.
        # novel = classes {2, 3, 4}, argmax over columns 2..4: only the
        # label-2 sample is right -> 1 of 4.
        assert results == pytest.approx({
            'dtd/base': 100.0,
            'dtd/novel': 25.0,
            'dtd/hm': 40.0,
            'dtd/all': 200 / 7,
        })

    def test_num_base_classes_from_dataset_meta(self):
        metric = METRICS.build(dict(type='BaseNovelAccuracy'))
        metric.dataset_meta = dict(classes=list('abcde'), num_base_classes=2)
        results = _evaluate(metric, _as_dicts(SAMPLES))
        assert results['b2n/base'] == pytest.approx(100.0)
        assert results['b2n/novel'] == pytest.approx(25.0)

    def test_argument_overrides_dataset_meta(self):
        metric = METRICS.build(
            dict(type='BaseNovelAccuracy', num_base_classes=3))
        metric.dataset_meta = dict(num_base_classes=2)
        results = _evaluate(metric, _as_dicts(SAMPLES))
        assert results['b2n/base'] == pytest.approx(75.0)

    def test_zero_accuracy_gives_zero_hm(self):
        samples = [(0, [0.0, 1.0, 0.0]), (2, [0.0, 0.0, 0.0])]
        # m = 2: base sample predicts 1 (wrong); the novel split has only
        # column 2, so the novel sample is always right.
        metric = METRICS.build(dict(type='BaseNovelAccuracy'))
        results = _evaluate(metric, _as_dicts(samples))
        assert results['b2n/base'] == 0.0
        assert results['b2n/novel'] == 100.0
        assert results['b2n/hm'] == 0.0
        samples = [(0, [0.0, 1.0, 0.0]), (1, [1.0, 0.0, 0.0])]
        metric = METRICS.build(dict(type='BaseNovelAccuracy'))
        results = _evaluate(metric, _as_dicts(samples))
        assert results['b2n/base'] == 0.0
        assert 'b2n/novel' not in results and 'b2n/hm' not in results

    def test_missing_split_is_omitted_with_warning(self, monkeypatch):
        messages = []
        monkeypatch.setattr(bna_module, 'print_log',
                            lambda msg, **kwargs: messages.append(msg))
        base_only = [s for s in SAMPLES if s[0] < 3]
        metric = METRICS.build(dict(type='BaseNovelAccuracy'))
        results = _evaluate(metric, _as_dicts(base_only))
        assert set(results) == {'b2n/base', 'b2n/all'}
        assert results['b2n/base'] == pytest.approx(75.0)
        # all-class argmax: samples with labels 0, 0 right of 4.
        assert results['b2n/all'] == pytest.approx(50.0)
        assert any('novel' in m for m in messages)

    def test_single_subset(self):
        # Novel subset relabelled from 0 (dataset_meta num_base_classes=0):
        # every column is novel, so novel accuracy = all-class accuracy.
        samples = [(0, [0.7, 0.3]), (1, [0.6, 0.4]), (1, [0.1, 0.9])]
        metric = METRICS.build(dict(type='BaseNovelAccuracy'))
        metric.dataset_meta = dict(classes=('a', 'b'), num_base_classes=0)
        results = _evaluate(metric, _as_dicts(samples))
        assert results == pytest.approx({
            'b2n/novel': 200 / 3,
            'b2n/all': 200 / 3
        })
        # Base subset: scores over the base classes only, m = n.
        metric = METRICS.build(dict(type='BaseNovelAccuracy'))
        metric.dataset_meta = dict(classes=('a', 'b'), num_base_classes=2)
        results = _evaluate(metric, _as_dicts(samples))
        assert results == pytest.approx({
            'b2n/base': 200 / 3,
            'b2n/all': 200 / 3
        })

    def test_invalid_inputs(self):
        with pytest.raises(ValueError, match='num_base_classes'):
            METRICS.build(dict(type='BaseNovelAccuracy', num_base_classes=-1))
        with pytest.raises(ValueError, match='num_base_classes'):
            METRICS.build(
                dict(type='BaseNovelAccuracy', num_base_classes=True))
        metric = METRICS.build(
            dict(type='BaseNovelAccuracy', num_base_classes=6))
        with pytest.raises(ValueError, match='num_base_classes'):
            metric.process(None, _as_dicts(SAMPLES[:1]))
        metric = METRICS.build(dict(type='BaseNovelAccuracy'))
        with pytest.raises(ValueError, match='gt_label 5'):
            _evaluate(metric, _as_dicts([(5, [0.1] * 5)]))
        metric = METRICS.build(dict(type='BaseNovelAccuracy'))
        with pytest.raises(ValueError, match='same classes'):
            _evaluate(metric, _as_dicts([(0, [0.1] * 5), (0, [0.1] * 4)]))
        metric = METRICS.build(dict(type='BaseNovelAccuracy'))
        with pytest.raises(ValueError, match='pred_score'):
            metric.process(None, [dict(gt_label=torch.tensor([0]))])

    def test_ceil_split_for_odd_counts(self):
        metric = METRICS.build(dict(type='BaseNovelAccuracy'))
        assert metric._resolve_num_base(5) == math.ceil(5 / 2) == 3
        assert metric._resolve_num_base(4) == 2
