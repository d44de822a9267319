from .clip_builder import PRECISIONS, build_clip, infer_openai_clip_config
from .data_preprocessor import LabelFreeDataPreprocessor
from .prompted_clip import PromptedCLIP

__all__ = [
    'PRECISIONS', 'LabelFreeDataPreprocessor', 'PromptedCLIP', 'build_clip',
    'infer_openai_clip_config'
]
