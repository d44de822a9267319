"""Data transforms of mmpromptkd."""
from .load_image_from_file_safe import (LoadImageFromFileSafe,
                                        UnreadableImageError)

__all__ = ['LoadImageFromFileSafe', 'UnreadableImageError']
