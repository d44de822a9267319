"""The globals a checkpoint may name besides tensors and containers:
mmengine's HistoryBuffers and their numpy arrays, checked, for
``torch.load(weights_only=True)``."""
import pickle
from typing import Any, NoReturn

import numpy as np
from mmengine.logging.history_buffer import HistoryBuffer

# The statistics every HistoryBuffer has; the only names ``getattr`` in a
# checkpoint may resolve (a fixed list: nothing loaded can widen it).
STATISTICS = ('min', 'max', 'current', 'mean')
_BUFFER_STATE = dict(max_length=int, _log_history=np.ndarray,
                     _count_history=np.ndarray, statistics_methods=dict)


class _CheckedHistoryBuffer:
    """Stand-in that the name of mmengine's HistoryBuffer loads as."""

    def __setstate__(self, state: Any) -> None:
        # HistoryBuffer.__setstate__ would copy the state's
        # statistics_methods into the class, for every buffer.
        if not isinstance(state, dict):
            _refuse(f'a HistoryBuffer state of type {type(state).__name__}')
        for key, value in state.items():
            kind = _BUFFER_STATE.get(key)
            if kind is None:
                _refuse(f'the HistoryBuffer state key {key!r} (known: '
                        f'{sorted(_BUFFER_STATE)})')
            if not isinstance(value, kind) or isinstance(value, bool):
                _refuse(f'HistoryBuffer.{key} of type '
                        f'{type(value).__name__} (expected {kind.__name__})')
        for key in ('_log_history', '_count_history'):
            if key in state and (state[key].ndim != 1
                                 or state[key].dtype.kind not in 'iuf'):
                _refuse(f'HistoryBuffer.{key} of shape {state[key].shape} '
                        f'and dtype {state[key].dtype} (expected 1-D '
                        'numbers)')
        for name, method in state.get('statistics_methods', {}).items():
            if name not in STATISTICS or \
                    method is not getattr(HistoryBuffer, name):
                _refuse(f'HistoryBuffer statistics_methods[{name!r}] = '
                        f'{method!r} (only {list(STATISTICS)}, each bound '
                        'to itself)')
        empty = np.zeros(0)
        log = state.get('_log_history', empty)
        count = state.get('_count_history', empty)
        if len(log) != len(count):
            _refuse(f'a HistoryBuffer of {len(log)} values and {len(count)} '
                    'counts')
        self.buffer = HistoryBuffer(log, count,
                                    state.get('max_length', 1000000))


def rebuild_history_buffers(loaded: Any) -> Any:
    """Replace the stand-ins in what ``torch.load`` returned under
    :data:`SAFE_GLOBALS` by HistoryBuffers (at any depth)."""
    if isinstance(loaded, _CheckedHistoryBuffer):
        return loaded.buffer
    if isinstance(loaded, dict):
        for key, value in loaded.items():
            if isinstance(value, (dict, list, tuple, _CheckedHistoryBuffer)):
                loaded[key] = rebuild_history_buffers(value)
    elif isinstance(loaded, list):
        loaded[:] = [rebuild_history_buffers(v) for v in loaded]
    elif type(loaded) is tuple:
        loaded = tuple(rebuild_history_buffers(v) for v in loaded)
    return loaded


def _refuse(what: str) -> NoReturn:
    raise pickle.UnpicklingError(f'refused {what} while loading a checkpoint')


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to the statistics methods of HistoryBuffer."""
    # mmengine pickles them as getattr(HistoryBuffer, 'min'); allowing
    # getattr itself would allow any code.
    if obj in (HistoryBuffer, _CheckedHistoryBuffer) and name in STATISTICS:
        return getattr(HistoryBuffer, name)
    _refuse(f'getattr({obj!r}, {name!r}): only the HistoryBuffer statistics '
            f'{list(STATISTICS)} may be resolved')


def _numpy_safe_globals() -> list:
    """numpy globals of plain numeric arrays and scalars in a checkpoint."""
    dtypes = [np.float16, np.float32, np.float64, np.int8, np.int16,
              np.int32, np.int64, np.uint8, np.bool_]
    items = [np.ndarray, np.dtype] + [type(np.dtype(t)) for t in dtypes]
    # The functions numpy pickles arrays and scalars with, as its public
    # pickling protocol gives them; numpy 2 writes numpy._core, numpy 1
    # numpy.core: both are accepted.
    for name, value in (('_reconstruct', np.zeros(1)),
                        ('scalar', np.float32(0))):
        func = value.__reduce__()[0]
        items += [func, (func, f'numpy.core.multiarray.{name}'),
                  (func, f'numpy._core.multiarray.{name}')]
    return items


SAFE_GLOBALS = [
    (_CheckedHistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
    (_history_buffer_getattr, 'builtins.getattr'),
    (_history_buffer_getattr, '__builtin__.getattr'),
] + _numpy_safe_globals()
