"""Tests of the KL logit loss."""
import math
from typing import List

import pytest
import torch

import mmpromptkd  # noqa: F401  (registers the components)
from mmpromptkd.registry import MODELS

STUDENT = [[1.0, 2.0, 0.5, -1.0], [0.0, -0.5, 3.0, 1.5], [2.5, 2.5, -2.0, 0.0]]
TEACHER = [[0.5, 3.0, -1.0, 0.0], [1.0, 1.0, 2.0, -3.0], [-1.0, 4.0, 0.5, 0.5]]


def _softmax(row: List[float], tau: float) -> List[float]:
    """Plain-Python softmax with the max subtracted."""
    top = max(row)
    exps = [math.exp((v - top) / tau) for v in row]
    total = sum(exps)
    return [e / total for e in exps]


def _reference(student, teacher, tau, reduction, symmetric=False,
               loss_weight=1.0) -> float:
    """Independent loop-based KL with the reductions of the spec."""
    num_rows, num_cols = len(student), len(student[0])

    def kl(p_rows, q_rows):
        total = 0.0
        for b in range(num_rows):
            for c in range(num_cols):
                p, q = p_rows[b][c], q_rows[b][c]
                if p > 0:
                    total += p * (math.log(p) - math.log(q))
        return total

    p_s = [_softmax(r, tau) for r in student]
    p_t = [_softmax(r, tau) for r in teacher]
    denom = {'mean': num_rows * num_cols, 'batchmean': num_rows, 'sum': 1}
    value = kl(p_t, p_s) / denom[reduction]
    if symmetric:
        value = (value + kl(p_s, p_t) / denom[reduction]) / 2
    return loss_weight * tau**2 * value


class TestKLLogitLoss:

    @pytest.mark.parametrize('reduction', ['mean', 'batchmean', 'sum'])
    @pytest.mark.parametrize('tau', [1.0, 2.0, 0.5])
    @pytest.mark.parametrize('symmetric', [False, True])
    def test_values(self, reduction, tau, symmetric):
        loss_fn = MODELS.build(
            dict(
                type='KLLogitLoss',
                tau=tau,
                loss_weight=3.0,
                reduction=reduction,
                symmetric=symmetric))
        loss = loss_fn(
            torch.tensor(STUDENT, dtype=torch.float64),
            torch.tensor(TEACHER, dtype=torch.float64))
        expected = _reference(STUDENT, TEACHER, tau, reduction, symmetric,
                              loss_weight=3.0)
        assert loss.dim() == 0
        assert loss.item() == pytest.approx(expected, rel=1e-10)

    def test_hand_computed_value(self):
        # Two classes, one row: p_T = (0.5, 0.5), p_S = softmax(0, ln 3)
        # = (0.25, 0.75). KL = 0.5 ln 2 + 0.5 ln(2/3) = 0.5 ln(4/3);
        # 'mean' divides by B * C = 2, then the weight 1000 applies.
        loss_fn = MODELS.build(dict(type='KLLogitLoss', loss_weight=1000.))
        loss = loss_fn(
            torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([[1.0, 1.0]]))
        assert loss.item() == pytest.approx(1000 * 0.5 * math.log(4 / 3) / 2,
                                            rel=1e-6)

    def test_defaults_and_identical_inputs(self):
        loss_fn = MODELS.build(dict(type='KLLogitLoss'))
        assert (loss_fn.tau, loss_fn.loss_weight, loss_fn.reduction,
                loss_fn.symmetric) == (1.0, 1.0, 'mean', False)
        logits = torch.tensor(TEACHER)
        assert loss_fn(logits, logits).item() == pytest.approx(0.0, abs=1e-7)

    def test_gradient_only_reaches_student(self):
        loss_fn = MODELS.build(dict(type='KLLogitLoss', symmetric=True))
        student = torch.tensor(STUDENT, requires_grad=True)
        teacher = torch.tensor(TEACHER, requires_grad=True)
        loss_fn(student, teacher).backward()
        assert teacher.grad is None
        assert student.grad is not None
        assert student.grad.abs().sum() > 0

    def test_gradient_matches_closed_form(self):
        # d/dz_S of sum KL(p_T || p_S) / (B*C) at tau = 1 is
        # (p_S - p_T) / (B*C).
        loss_fn = MODELS.build(dict(type='KLLogitLoss'))
        student = torch.tensor(STUDENT, dtype=torch.float64,
                               requires_grad=True)
        teacher = torch.tensor(TEACHER, dtype=torch.float64)
        loss_fn(student, teacher).backward()
        expected = [[(ps - pt) / 12 for ps, pt in zip(
            _softmax(s, 1.0), _softmax(t, 1.0))]
                    for s, t in zip(STUDENT, TEACHER)]
        torch.testing.assert_close(
            student.grad, torch.tensor(expected, dtype=torch.float64))

    @pytest.mark.parametrize('symmetric', [False, True])
    def test_extreme_logits_stay_finite(self, symmetric):
        loss_fn = MODELS.build(
            dict(type='KLLogitLoss', symmetric=symmetric))
        student = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]],
                               requires_grad=True)
        teacher = torch.tensor([[-1e4, 1e4, 0.0], [1e4, -1e4, -5e3]])
        loss = loss_fn(student, teacher)
        loss.backward()
        assert torch.isfinite(loss)
        assert torch.isfinite(student.grad).all()
        # Here the teacher puts all mass on the class the student gives
        # log-probability -2e4, so KL is about 2e4 per row; 'mean' over 6.
        if not symmetric:
            assert loss.item() == pytest.approx(2 * 2e4 / 6, rel=1e-3)

    def test_zero_probability_teacher_class(self):
        # A teacher logit of -inf is a class with probability exactly 0: it
        # must contribute 0, not NaN.
        loss_fn = MODELS.build(dict(type='KLLogitLoss', reduction='sum'))
        student = torch.tensor([[0.0, 0.0, 0.0]], requires_grad=True)
        teacher = torch.tensor([[0.0, 0.0, float('-inf')]])
        loss = loss_fn(student, teacher)
        loss.backward()
        # p_T = (1/2, 1/2, 0), p_S = 1/3 each: KL = ln(3/2).
        assert loss.item() == pytest.approx(math.log(1.5), rel=1e-6)
        assert torch.isfinite(student.grad).all()

    def test_half_precision_input(self):
        loss_fn = MODELS.build(dict(type='KLLogitLoss'))
        loss = loss_fn(
            torch.tensor(STUDENT, dtype=torch.bfloat16),
            torch.tensor(TEACHER, dtype=torch.bfloat16))
        assert loss.dtype == torch.float32
        expected = _reference(
            torch.tensor(STUDENT).bfloat16().float().tolist(),
            torch.tensor(TEACHER).bfloat16().float().tolist(), 1.0, 'mean')
        assert loss.item() == pytest.approx(expected, rel=1e-5)

    @pytest.mark.parametrize('cfg, match', [
        (dict(reduction='none'), 'reduction'),
        (dict(tau=0.0), 'tau'),
        (dict(tau=-1.0), 'tau'),
    ])
    def test_invalid_arguments(self, cfg, match):
        with pytest.raises(ValueError, match=match):
            MODELS.build(dict(type='KLLogitLoss', **cfg))

    def test_shape_mismatch(self):
        loss_fn = MODELS.build(dict(type='KLLogitLoss'))
        with pytest.raises(ValueError, match='teacher_logits'):
            loss_fn(torch.zeros(2, 3), torch.zeros(2, 4))
        with pytest.raises(ValueError, match='student_logits'):
            loss_fn(torch.zeros(3), torch.zeros(3))
