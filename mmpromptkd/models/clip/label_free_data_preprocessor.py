"""A data preprocessor that gives a distiller no labels in training."""
from typing import Any, Dict

from mmpretrain.models import ClsDataPreprocessor

from mmpromptkd.registry import MODELS


@MODELS.register_module()
class LabelFreeDataPreprocessor(ClsDataPreprocessor):
    """mmpretrain's ``ClsDataPreprocessor`` that drops labels in training.

    Distillation learns from the teacher's predictions only. In training
    the data samples are dropped before anything reads them, so a label in
    a training sample (a CoOp split) cannot influence a step, and batches
    that mix images with and without labels (a CoOp split concatenated with
    an unlabeled folder) are accepted. mmengine's distributed wrapper calls
    the preprocessor directly, so this holds in every launcher. Evaluation
    keeps the samples (and their labels, for the metrics).

    Args:
        **kwargs: Arguments of ``ClsDataPreprocessor``; batch augments,
            which would need labels, are refused.
    """

    def __init__(self, **kwargs) -> None:
        if kwargs.get('batch_augments'):
            raise ValueError('LabelFreeDataPreprocessor: batch_augments mix '
                             'labels, and distillation has none')
        super().__init__(**kwargs)

    def forward(self, data: Dict[str, Any], training: bool = False) -> dict:
        """Normalise the images; in training, return no data samples.

        Args:
            data (dict): ``inputs`` and ``data_samples`` from the loader.
            training (bool): Whether this is a training step.

        Returns:
            dict: ``inputs`` and ``data_samples`` (None in training).
        """
        if training:
            data = dict(data, data_samples=None)
        return super().forward(data, training)
