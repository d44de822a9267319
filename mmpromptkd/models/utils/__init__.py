from .image_size_check import check_image_size
from .predictions import logits_to_data_samples
from .reference_fp16 import convert_to_reference_fp16

__all__ = [
    'check_image_size', 'convert_to_reference_fp16', 'logits_to_data_samples'
]
