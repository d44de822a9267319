"""CLIP's input normalisation as an mmpretrain data preprocessor."""
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

# open_clip's OpenAI mean / std, scaled to the 0-255 range of the pipeline.
CLIP_DATA_PREPROCESSOR = dict(
    type='ClsDataPreprocessor',
    mean=[255 * m for m in OPENAI_DATASET_MEAN],
    std=[255 * s for s in OPENAI_DATASET_STD],
    to_rgb=True)

# The same for distillers, which get no labels in training.
DISTILL_DATA_PREPROCESSOR = dict(
    CLIP_DATA_PREPROCESSOR, type='mmpromptkd.LabelFreeDataPreprocessor')
