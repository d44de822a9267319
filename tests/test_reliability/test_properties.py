"""Property-based tests: numerical safety over random inputs (hypothesis).

Each property runs on a few dozen random examples (``max_examples``), on
one thread; hypothesis shrinks any failure to a small counterexample.
"""
import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mmpromptkd.models.losses.kl_logit_loss import KLLogitLoss
from mmpromptkd.registry import METRICS, MODELS

# float32 rounding of a KL divergence near zero: a few ulps of the entropy
# terms, times tau ** 2 and the number of rows summed.
_EPS32 = float(np.finfo(np.float32).eps)
LOGIT = st.floats(-1e4, 1e4, width=32)
TAU = st.floats(0.05, 10.0)
REDUCTION = st.sampled_from(['mean', 'batchmean', 'sum'])

TINY = dict(
    embed_dim=32,
    vision_cfg=dict(
        image_size=32, patch_size=8, width=64, layers=2, head_width=32),
    text_cfg=dict(
        context_length=77, vocab_size=49408, width=64, heads=2, layers=2))
TINY_LARGE = dict(
    embed_dim=48,
    vision_cfg=dict(
        image_size=32, patch_size=8, width=64, layers=2, head_width=32),
    text_cfg=dict(
        context_length=77, vocab_size=49408, width=64, heads=2, layers=2))
CLASSES = ['red circle', 'blue square', 'green star', 'cat', 'dog']


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _rounding_bound(tau: float, rows: int, classes: int, largest: float,
                    reduction: str) -> float:
    """float32 rounding of the loss: a few ulps of the largest scaled logit
    (the log-probabilities' error) per row, times tau ** 2, over the
    reduction's divisor."""
    per_row = 8 * _EPS32 * max(1.0, math.log(max(classes, 1)),
                               largest / tau) * tau**2
    divisor = {'sum': 1, 'batchmean': rows, 'mean': rows * classes}[reduction]
    return per_row * rows / divisor


@st.composite
def _logit_pairs(draw):
    rows = draw(st.integers(1, 8))
    classes = draw(st.integers(1, 50))
    shape = (rows, classes)
    return (draw(arrays(np.float32, shape, elements=LOGIT)),
            draw(arrays(np.float32, shape, elements=LOGIT)))


class TestKLLogitLoss:

    @settings(max_examples=150, deadline=None)
    @example(
        logits=(np.array([[0.001953125, 0.0, 0.0]],
                         np.float32), np.zeros((1, 3), np.float32)),
        tau=3.0,
        reduction='sum',
        symmetric=False)
    @given(_logit_pairs(), TAU, REDUCTION, st.booleans())
    def test_equals_the_divergence_in_float64(self, logits, tau, reduction,
                                              symmetric):
        """The loss is the KL divergence computed independently in float64
        (numpy), up to float32 rounding: a negative, clamped or otherwise
        wrong value fails."""
        student, teacher = logits
        rows, classes = student.shape

        def log_softmax(z):
            z = z.astype(np.float64) / tau
            z = z - z.max(axis=1, keepdims=True)
            return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

        def kl(log_p, log_q):
            p = np.exp(log_p)
            return np.where(p > 0, p * (log_p - log_q), 0.0).sum()

        log_s, log_t = log_softmax(student), log_softmax(teacher)
        expected = kl(log_t, log_s)
        if symmetric:
            expected = (expected + kl(log_s, log_t)) / 2
        expected /= {'sum': 1, 'batchmean': rows,
                     'mean': rows * classes}[reduction]
        expected *= tau**2
        student_t = torch.from_numpy(student).requires_grad_()
        loss = KLLogitLoss(tau=tau, reduction=reduction, symmetric=symmetric)(
            student_t, torch.from_numpy(teacher))
        assert torch.isfinite(loss)
        largest = float(np.abs(logits).max())
        bound = _rounding_bound(tau, rows, classes, largest, reduction)
        assert abs(loss.item() - expected) <= bound + 1e-6 * abs(expected)
        if symmetric:
            return
        # d/dz_S of tau^2 KL(p_T || p_S) = tau (p_S - p_T), over the divisor.
        loss.backward()
        divisor = {'sum': 1, 'batchmean': rows,
                   'mean': rows * classes}[reduction]
        expected_grad = tau * (np.exp(log_s) - np.exp(log_t)) / divisor
        np.testing.assert_allclose(student_t.grad.numpy(), expected_grad,
                                   rtol=1e-4, atol=1e-5 * tau / divisor)

    @settings(max_examples=100, deadline=None)
    @given(_logit_pairs(), TAU, REDUCTION, st.booleans(), st.floats(0.0, 1e3))
    def test_zero_for_identical_logits(self, logits, tau, reduction, symmetric,
                                       weight):
        logits = torch.from_numpy(logits[0])
        loss = KLLogitLoss(
            tau=tau,
            reduction=reduction,
            symmetric=symmetric,
            loss_weight=weight)(logits, logits.clone())
        assert loss.item() == 0.0


class TestFeatureProjector:

    @settings(max_examples=40, deadline=None)
    @given(
        st.integers(2, 8).flatmap(lambda rows: arrays(
            np.float32, (rows, 16), elements=st.floats(-1e4, 1e4, width=32))),
        st.booleans())
    def test_output_finite(self, features, training):
        torch.manual_seed(0)
        projector = MODELS.build(
            dict(type='FeatureProjector', in_channels=16, out_channels=8))
        projector.train(training)
        out = projector(torch.from_numpy(features))
        assert out.shape == (features.shape[0], 8)
        assert torch.isfinite(out).all()
        if training:
            assert torch.isfinite(projector.bn.running_var).all()


@st.composite
def _scored_samples(draw):
    classes = draw(st.integers(1, 12))
    count = draw(st.integers(1, 30))
    scores = draw(
        arrays(
            np.float32, (count, classes),
            elements=st.floats(-1e4, 1e4, width=32)))
    labels = draw(
        st.lists(st.integers(0, classes - 1), min_size=count, max_size=count))
    base = draw(st.integers(0, classes))
    return scores, labels, base


class TestBaseNovelAccuracy:

    @settings(max_examples=100, deadline=None)
    @given(_scored_samples())
    def test_bounds(self, samples):
        scores, labels, base = samples
        metric = METRICS.build(
            dict(type='BaseNovelAccuracy', num_base_classes=base))
        metric.process(None, [
            dict(pred_score=torch.from_numpy(s), gt_label=label)
            for s, label in zip(scores, labels)
        ])
        results = metric.compute_metrics(metric.results)
        assert 'all' in results
        for value in results.values():
            assert 0.0 <= value <= 100.0 and math.isfinite(value)
        if 'hm' in results:
            low, high = sorted((results['base'], results['novel']))
            assert low - 1e-9 <= results['hm'] <= high + 1e-9


@pytest.fixture(scope='module')
def distiller():
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            type='PromptKDDistiller',
            allow_untrained_teacher=True,
            student=dict(
                clip=dict(model_cfg=copy.deepcopy(TINY), quick_gelu=True),
                vision_prompt_depth=2),
            teacher=dict(
                clip=dict(
                    model_cfg=copy.deepcopy(TINY_LARGE), quick_gelu=True),
                vision_prompt_depth=2,
                text_prompt_depth=2),
            distill_loss=dict(type='KLLogitLoss', loss_weight=1000.0)))
    model.prepare_text_features(CLASSES, for_training=True)
    return model


class TestDistillerLogits:

    @settings(max_examples=20, deadline=None)
    @given(
        st.floats(0.0, math.log(1e4)), st.floats(1e-3, 1e3), st.integers(2, 4),
        st.integers(0, 2**31 - 1))
    def test_finite_for_large_logit_scale(self, distiller, log_scale,
                                          magnitude, batch, seed):
        images = torch.randn(
            batch, 3, 32, 32,
            generator=torch.Generator().manual_seed(seed)) * magnitude
        with torch.no_grad():
            distiller.student.clip.logit_scale.fill_(log_scale)
            distiller.eval()
            logits = distiller(images, mode='tensor')
            assert logits.shape == (batch, len(CLASSES))
            assert torch.isfinite(logits).all()
            assert logits.abs().max() <= math.exp(log_scale) * (1 + 1e-5)
            scores = torch.stack(
                [s.pred_score for s in distiller(images, mode='predict')])
            assert torch.isfinite(scores).all()
            torch.testing.assert_close(
                scores.sum(-1), torch.ones(batch), rtol=0, atol=1e-5)
            distiller.train()
            loss = distiller(images, mode='loss')['loss_kd']
            assert torch.isfinite(loss)
