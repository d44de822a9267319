from .image_size_check import check_image_size
from .predictions import logits_to_data_samples

__all__ = ['check_image_size', 'logits_to_data_samples']
