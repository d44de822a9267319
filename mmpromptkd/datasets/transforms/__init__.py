"""Data transforms of mmpromptkd."""
from .load_image_from_file_safe import (LoadImageFromFileSafe,
                                        UnreadableImageError)
from .replayable_random_flip import ReplayableRandomFlip
from .replayable_random_resized_crop import ReplayableRandomResizedCrop
from .view_replay import replay_view

__all__ = [
    'LoadImageFromFileSafe', 'UnreadableImageError',
    'ReplayableRandomResizedCrop', 'ReplayableRandomFlip', 'replay_view'
]
