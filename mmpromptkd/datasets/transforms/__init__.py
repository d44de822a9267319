"""Data transforms of mmpromptkd."""
from .load_image_from_file_safe import (LoadImageFromFileSafe,
                                        UnreadableImageError)
from .view_replay import (ReplayableRandomFlip, ReplayableRandomResizedCrop,
                          replay_view)

__all__ = [
    'LoadImageFromFileSafe', 'UnreadableImageError',
    'ReplayableRandomResizedCrop', 'ReplayableRandomFlip', 'replay_view'
]
