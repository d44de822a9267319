"""Turning classifier logits into mmpretrain predictions."""
from typing import List, Optional

import torch
from mmpretrain.structures import DataSample


def logits_to_data_samples(
        logits: torch.Tensor,
        data_samples: Optional[List[DataSample]] = None) -> List[DataSample]:
    """Attach softmax scores and arg-max labels to data samples.

    Args:
        logits (Tensor): (B, C) logits over all classes.
        data_samples (list[DataSample], optional): Samples to attach the
            predictions to (e.g. holding ``gt_label``); new ones when None.

    Returns:
        list[DataSample]: With ``pred_score`` and ``pred_label``.
    """
    scores = logits.softmax(-1)
    labels = scores.argmax(dim=-1)
    if data_samples is None:
        data_samples = [DataSample() for _ in range(len(scores))]
    for sample, score, label in zip(data_samples, scores, labels):
        sample.set_pred_score(score).set_pred_label(label)
    return data_samples
