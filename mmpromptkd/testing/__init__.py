"""Helpers for tests of mmpromptkd and of code built on it."""
from .scaled_open_clip import (quick_gelu_of, scaled_model_cfg,
                               small_timm_trunks)

__all__ = ['scaled_model_cfg', 'small_timm_trunks', 'quick_gelu_of']
