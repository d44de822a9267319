"""The globals a checkpoint may name besides tensors and containers.

mmengine's training checkpoints hold the message hub's HistoryBuffers and
their numpy arrays; :data:`SAFE_GLOBALS` allows exactly those, for
``torch.load(weights_only=True)`` through ``torch.serialization.safe_globals``.
"""
import pickle
from typing import Any

import numpy as np
from mmengine.logging.history_buffer import HistoryBuffer

_DEFAULT_STATISTICS = {'min', 'max', 'current', 'mean'}


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to the statistics methods of HistoryBuffer.

    mmengine pickles a HistoryBuffer's statistics methods as
    ``getattr(HistoryBuffer, 'min')``; allowing ``getattr`` itself would
    allow any code.
    """
    allowed = _DEFAULT_STATISTICS | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refused getattr({obj!r}, {name!r}) while loading a checkpoint: '
        'only HistoryBuffer statistics methods may be resolved')


def _numpy_core(name: str) -> Any:
    core = getattr(np, '_core', None) or np.core
    return getattr(core.multiarray, name)


def _numpy_safe_globals() -> list:
    """numpy globals of plain numeric arrays and scalars in a checkpoint."""
    dtypes = [np.float16, np.float32, np.float64, np.int8, np.int16,
              np.int32, np.int64, np.uint8, np.bool_]
    items = [np.ndarray, np.dtype] + [type(np.dtype(t)) for t in dtypes]
    for name in ('_reconstruct', 'scalar'):
        func = _numpy_core(name)
        items.append(func)
        # numpy 2 writes numpy._core, numpy 1 numpy.core; accept both.
        items.append((func, f'numpy.core.multiarray.{name}'))
        items.append((func, f'numpy._core.multiarray.{name}'))
    return items


# What an mmengine training checkpoint holds besides tensors and plain
# containers: the message hub's HistoryBuffers and their numpy arrays.
SAFE_GLOBALS = [
    HistoryBuffer,
    (_history_buffer_getattr, 'builtins.getattr'),
    (_history_buffer_getattr, '__builtin__.getattr'),
] + _numpy_safe_globals()
