from .clip_builder import PRECISIONS, build_clip, infer_openai_clip_config
from .prompted_clip import PromptedCLIP

__all__ = [
    'PRECISIONS', 'PromptedCLIP', 'build_clip', 'infer_openai_clip_config'
]
