"""CLIP's input normalisation as mmpretrain data preprocessors, and one that
gives a distiller no labels in training."""
from typing import Any, Dict, Optional

from mmpretrain.models import ClsDataPreprocessor
from mmpretrain.structures import DataSample
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

from mmpromptkd.registry import MODELS

# open_clip's OpenAI mean / std, scaled to the 0-255 range of the pipeline.
CLIP_DATA_PREPROCESSOR = dict(
    type='ClsDataPreprocessor', mean=[255 * m for m in OPENAI_DATASET_MEAN],
    std=[255 * s for s in OPENAI_DATASET_STD], to_rgb=True)

# The same for distillers, which get no labels in training.
DISTILL_DATA_PREPROCESSOR = dict(
    CLIP_DATA_PREPROCESSOR, type='mmpromptkd.LabelFreeDataPreprocessor')


@MODELS.register_module()
class LabelFreeDataPreprocessor(ClsDataPreprocessor):
    """mmpretrain's ``ClsDataPreprocessor`` that drops training samples
    (keeping only cached ``teacher_logits``) before anything reads a label.
    """

    def __init__(self, **kwargs) -> None:
        if kwargs.get('batch_augments'):
            raise ValueError('LabelFreeDataPreprocessor: batch_augments mix '
                             'labels, and distillation has none')
        super().__init__(**kwargs)

    def forward(self, data: Dict[str, Any], training: bool = False) -> dict:
        """Normalise the images; in training, drop the data samples."""
        if training:
            data = dict(data, data_samples=_teacher_logits_only(
                data.get('data_samples')))
        return super().forward(data, training)


def _teacher_logits_only(samples: Optional[list]) -> Optional[list]:
    """New samples with the cached teacher logits alone, or None."""
    if not samples or 'teacher_logits' not in samples[0]:
        return None
    missing = [i for i, s in enumerate(samples) if 'teacher_logits' not in s]
    if missing:
        raise ValueError(
            f'{len(missing)} sample(s) of a batch have no cached teacher '
            f'logits (first: {missing[0]}) while others have: a teacher-'
            'cached training set cannot be mixed with other images')
    return [DataSample(teacher_logits=s.teacher_logits) for s in samples]
