"""Temperature-scaled KL divergence between teacher and student logits."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmpromptkd.registry import MODELS

_REDUCTIONS = ('mean', 'batchmean', 'sum')


def _kl_elementwise(log_p: Tensor, log_q: Tensor) -> Tensor:
    """Elementwise ``p * (log p - log q)`` with ``0 * log 0 = 0``."""
    # log p = -inf would give 0 * (-inf) = NaN in kl_div; the lowest finite
    # value still has exp() == 0, so such a class contributes exactly zero.
    log_p = log_p.clamp_min(torch.finfo(log_p.dtype).min)
    return F.kl_div(log_q, log_p, reduction='none', log_target=True)


@MODELS.register_module()
class KLLogitLoss(nn.Module):
    r"""``w * tau^2 * KL(softmax(z_T / tau) || softmax(z_S / tau)) / D``,
    in at least float32, the teacher logits detached; ``D`` follows
    ``reduction`` ('mean', as in the PromptKD reference, is why its loss
    weights are as large as 1000).

    Args:
        tau (float): Softmax temperature (> 0).
        loss_weight (float): Weight :math:`w`.
        reduction (str): ``'mean'`` (divide by ``B * C``), ``'batchmean'``
            (by ``B``) or ``'sum'``.
        symmetric (bool): Average :math:`KL(p_T \| p_S)` and
            :math:`KL(p_S \| p_T)`.
    """

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0,
                 reduction: str = 'mean', symmetric: bool = False) -> None:
        super().__init__()
        if not tau > 0:
            raise ValueError(f'tau must be a positive number, got {tau!r}.')
        if reduction not in _REDUCTIONS:
            raise ValueError(f'reduction must be one of {_REDUCTIONS}, '
                             f'got {reduction!r}.')
        self.tau = float(tau)
        self.loss_weight = float(loss_weight)
        self.reduction = reduction
        self.symmetric = bool(symmetric)

    def _reduce(self, kl: Tensor) -> Tensor:
        """Reduce an elementwise ``(B, C)`` divergence to a scalar."""
        total = kl.sum()
        if self.reduction == 'sum':
            return total
        # An empty batch gives a zero loss rather than 0 / 0.
        denom = kl.numel() if self.reduction == 'mean' else kl.shape[0]
        return total / max(denom, 1)

    def forward(self, student_logits: Tensor,
                teacher_logits: Tensor) -> Tensor:
        """The weighted scalar loss of (B, C) student and teacher logits."""
        if student_logits.dim() != 2:
            raise ValueError('student_logits must have shape (B, C), got '
                             f'{tuple(student_logits.shape)}.')
        if teacher_logits.shape != student_logits.shape:
            raise ValueError(
                'teacher_logits must have the same shape as student_logits '
                f'{tuple(student_logits.shape)}, got '
                f'{tuple(teacher_logits.shape)}.')
        dtype = torch.promote_types(student_logits.dtype, torch.float32)
        log_p_s = F.log_softmax(student_logits.to(dtype) / self.tau, dim=-1)
        log_p_t = F.log_softmax(
            teacher_logits.detach().to(dtype) / self.tau, dim=-1)
        # Not clamped at 0: near the optimum float32 rounding can give
        # -1e-7, and a clamp there would also zero the gradient.
        loss = self._reduce(_kl_elementwise(log_p_t, log_p_s))
        if self.symmetric:
            loss = (loss + self._reduce(_kl_elementwise(log_p_s, log_p_t))) / 2
        return loss * (self.loss_weight * self.tau**2)

    def extra_repr(self) -> str:
        return (f'tau={self.tau}, loss_weight={self.loss_weight}, '
                f'reduction={self.reduction!r}, symmetric={self.symmetric}')
