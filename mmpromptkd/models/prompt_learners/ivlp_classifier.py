"""IVLP: independent vision-language prompts trained with cross-entropy."""
from mmpromptkd.registry import MODELS
from .base_prompt_classifier import BasePromptClassifier


@MODELS.register_module()
class IVLPClassifier(BasePromptClassifier):
    """Independent deep vision and text prompts, cross-entropy only; the
    defaults are those of the base-to-novel teachers. Arguments are those of
    :class:`BasePromptClassifier`."""

    def __init__(self, clip: dict, vision_prompt_depth: int = 9,
                 vision_prompt_length: int = 4, text_prompt_depth: int = 9,
                 text_prompt_length: int = 4, **kwargs) -> None:
        super().__init__(
            clip=clip,
            vision_prompt_depth=vision_prompt_depth,
            vision_prompt_length=vision_prompt_length,
            text_prompt_depth=text_prompt_depth,
            text_prompt_length=text_prompt_length,
            **kwargs)
