"""Feature distillation losses (the paper's KD-form ablation)."""
from torch import Tensor, nn

from mmpromptkd.registry import MODELS

_MODES = ('l1', 'mse')


@MODELS.register_module()
class FeatureDistillLoss(nn.Module):
    """``loss_weight * mean(|s - t|)`` ('l1') or ``mean((s - t) ** 2)``
    ('mse') of projected student and (constant) teacher image features.

    Args:
        mode (str): 'l1' or 'mse'.
        loss_weight (float): Weight of the loss.
    """

    def __init__(self, mode: str = 'l1', loss_weight: float = 1.0) -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f'FeatureDistillLoss: mode must be one of '
                             f'{_MODES}, got {mode!r}')
        self.mode = mode
        self.loss_weight = loss_weight

    def forward(self, student_features: Tensor,
                teacher_features: Tensor) -> Tensor:
        """Scalar loss of (B, D) student and teacher features."""
        if student_features.shape != teacher_features.shape:
            raise ValueError(
                'FeatureDistillLoss: student features '
                f'{tuple(student_features.shape)} and teacher features '
                f'{tuple(teacher_features.shape)} differ in shape')
        diff = student_features.float() - teacher_features.detach().float()
        loss = diff.abs() if self.mode == 'l1' else diff.pow(2)
        return self.loss_weight * loss.mean()

    def extra_repr(self) -> str:
        return f'mode={self.mode!r}, loss_weight={self.loss_weight}'
