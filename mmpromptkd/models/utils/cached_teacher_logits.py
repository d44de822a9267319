"""The teacher logits a batch carries from a teacher cache."""
from typing import Any, Optional, Sequence, Tuple

import torch
from mmpretrain.structures import DataSample


def cached_teacher_logits(
        data_samples: Optional[Sequence[Any]],
        shape: Optional[Tuple[int, int]] = None) -> Optional[torch.Tensor]:
    """The (B, C) cached teacher logits a batch carries (checked against
    ``shape`` if given), or None."""
    # Only samples of the preprocessor's making are looked into.
    if not data_samples or not isinstance(data_samples[0], DataSample) \
            or 'teacher_logits' not in data_samples[0]:
        return None
    logits = torch.stack([s.teacher_logits for s in data_samples])
    if shape is not None and logits.shape != shape:
        raise ValueError(
            f'cached teacher logits of shape {tuple(logits.shape)} for a '
            f'batch of {shape[0]} images over {shape[1]} classes')
    return logits
