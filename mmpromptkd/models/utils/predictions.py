"""Turning classifier logits into mmpretrain predictions."""
from typing import Any, Callable, List, Optional, Sequence

import torch
from mmpretrain.structures import DataSample
from torch import nn

from .image_size_check import check_image_size


def logits_to_data_samples(
        logits: torch.Tensor,
        data_samples: Optional[List[DataSample]] = None) -> List[DataSample]:
    """Attach softmax ``pred_score`` and arg-max ``pred_label`` of (B, C)
    logits to the data samples (new ones when None)."""
    scores = logits.softmax(-1)
    # Rows are already what set_pred_label makes; set_field skips its
    # per-sample checks (2.5-3x cheaper per image, benchmark case 3).
    labels = scores.argmax(dim=-1, keepdim=True)
    if data_samples is None:
        data_samples = [DataSample() for _ in range(len(scores))]
    for sample, score, label in zip(data_samples, scores, labels):
        sample.set_field(score, 'pred_score', dtype=torch.Tensor)
        sample.set_field(label, 'pred_label', dtype=torch.Tensor)
    return data_samples


def dispatch_forward(model: nn.Module, inputs: torch.Tensor,
                     data_samples: Optional[List[DataSample]], mode: str,
                     image_size: Optional[Sequence[int]],
                     tensor: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``BaseModel.forward``: check the image size against the model's fixed
    (H, W), if any, then run ``model.loss``, ``model.predict`` or
    ``tensor`` (the logits)."""
    if image_size is not None:
        check_image_size(inputs, image_size, data_samples)
    if mode == 'loss':
        return model.loss(inputs, data_samples)
    if mode == 'predict':
        return model.predict(inputs, data_samples)
    if mode == 'tensor':
        return tensor(inputs)
    raise RuntimeError(f'Invalid mode "{mode}"; expected loss, predict '
                       'or tensor')
