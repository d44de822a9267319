from .frozen_weights import (FROZEN_WEIGHTS_META, check_frozen_weights,
                             fill_frozen_weights, frozen_parameters,
                             frozen_weights_record, strip_frozen_weights)
from .input_normalization import (check_input_normalization,
                                  preprocessor_normalization,
                                  teacher_input_map)
from .predictions import (cached_teacher_logits, check_image_size,
                          logits_to_data_samples)
from .reference_fp16 import convert_to_reference_fp16

__all__ = [
    'FROZEN_WEIGHTS_META', 'cached_teacher_logits', 'check_frozen_weights',
    'check_image_size', 'check_input_normalization',
    'convert_to_reference_fp16', 'fill_frozen_weights', 'frozen_parameters',
    'frozen_weights_record', 'logits_to_data_samples',
    'preprocessor_normalization', 'strip_frozen_weights', 'teacher_input_map'
]
