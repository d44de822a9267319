"""Helpers for tests of mmpromptkd and of code built on it."""
from .scaled_open_clip import (quick_gelu_of, scaled_model_cfg,
                               small_timm_trunks)
from .small_hf_tokenizer import layout_of, write_small_hf_tokenizer

__all__ = [
    'scaled_model_cfg', 'small_timm_trunks', 'quick_gelu_of', 'layout_of',
    'write_small_hf_tokenizer'
]
