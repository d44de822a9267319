"""A batch of another image size is an error naming the images."""
from typing import List, Optional, Sequence

import torch

__all__ = ['check_image_size']


def check_image_size(inputs: torch.Tensor, expected: Sequence[int],
                     data_samples: Optional[List] = None) -> None:
    """Refuse a batch of another size than the model's (H, W), naming the
    images from the samples' ``img_path``/``img_shape`` (the transformer's
    own error names no file)."""
    expected = tuple(int(s) for s in expected)
    if tuple(inputs.shape[-2:]) == expected:
        return
    offending = []
    for sample in data_samples or []:
        shape = tuple(sample.metainfo.get('img_shape', ()))[:2]
        if shape != expected:
            offending.append(f'{sample.metainfo.get("img_path", "?")} '
                             f'({shape[0]} x {shape[1]})' if len(shape) == 2
                             else str(sample.metainfo.get('img_path', '?')))
    named = (': ' + ', '.join(offending[:5]) +
             (f' and {len(offending) - 5} more' if len(offending) > 5 else '')
             ) if offending else ''
    raise ValueError(
        f'the model takes {expected[0]} x {expected[1]} images but the batch '
        f'is {inputs.shape[-2]} x {inputs.shape[-1]}{named}. Resize them in '
        'the pipeline (e.g. ResizeEdge + CenterCrop) to the model size.')
