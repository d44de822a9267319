"""A batch of another image size is an error naming the images."""
from typing import List, Optional, Sequence

import torch

__all__ = ['check_image_size']


def check_image_size(inputs: torch.Tensor, expected: Sequence[int],
                     data_samples: Optional[List] = None) -> None:
    """Refuse images that the vision transformer cannot take.

    Without this check the error comes from deep inside the transformer and
    names no file.

    Args:
        inputs (Tensor): The batch (B, 3, H, W).
        expected (Sequence[int]): The model's (H, W).
        data_samples (list, optional): Samples with ``img_path`` and
            ``img_shape`` metainfo, to name the images.

    Raises:
        ValueError: Naming the images of another size and both sizes.
    """
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
