"""Mixed precision by autocast alone, on any device (bf16 on CPU)."""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from mmpromptkd.registry import OPTIM_WRAPPERS

_DTYPES = {'bfloat16': torch.bfloat16, 'float16': torch.float16}


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """Run forward passes under ``torch.autocast``; keep fp32 weights.

    Unlike mmengine's ``AmpOptimWrapper`` it runs without an accelerator,
    and scales no loss (bfloat16 needs none; for float16 on a GPU use
    ``AmpOptimWrapper``).

    Args:
        dtype (str): 'bfloat16' or 'float16'.
        **kwargs: Arguments of ``OptimWrapper``.
    """

    def __init__(self, dtype: str = 'bfloat16', **kwargs) -> None:
        if dtype not in _DTYPES:
            raise ValueError(f'AutocastOptimWrapper: dtype must be one of '
                             f'{list(_DTYPES)}, got {dtype!r}')
        super().__init__(**kwargs)
        self.cast_dtype = _DTYPES[dtype]

    @contextmanager
    def optim_context(self, model: nn.Module):
        device = next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(
                device_type=device, dtype=self.cast_dtype):
            yield
