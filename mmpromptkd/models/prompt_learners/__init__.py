"""Stage (a): prompt-learning teachers (IVLP, PromptSRC, MaPLe, zero-shot)."""
from .base_prompt_classifier import BasePromptClassifier
from .maple_classifier import MaPLeClassifier
from .promptsrc_classifier import IVLPClassifier, PromptSRCClassifier
from .zero_shot_clip_classifier import ZeroShotCLIPClassifier

__all__ = [
    'BasePromptClassifier', 'IVLPClassifier', 'MaPLeClassifier',
    'PromptSRCClassifier', 'ZeroShotCLIPClassifier'
]
