"""The few patches the pinned OpenMMLab stack needs, applied on import.

1. Safe checkpoint loading. torch >= 2.6 loads with ``weights_only=True``;
   mmengine 0.10.7 checkpoints hold :class:`HistoryBuffer` objects and numpy
   arrays, so ``--resume`` and ``tools/test.py CKPT`` fail. Instead of
   turning on arbitrary unpickling, the exact globals mmengine writes are
   allowlisted. ``HistoryBuffer`` used to pickle its statistics methods as
   ``getattr(HistoryBuffer, 'min')``; allowing ``getattr`` in general would
   allow any code, so a ``getattr`` that only resolves those methods is
   registered instead, and new checkpoints no longer store them at all.
2. Atomic local writes. mmengine writes checkpoints straight into their
   final file, so a crash mid-write leaves a truncated checkpoint (and a
   rewrite of the same name destroys the good one). Local writes now go to a
   temporary file in the same folder that replaces the target only once it
   is complete.
3. CPU distributed runs. mmengine's launchers call ``torch.cuda.set_device``;
   :func:`init_cpu_distributed` starts a gloo process group itself so that
   multi-process runs work (and are tested) on machines without a GPU.
"""
import os
import pickle
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from mmengine.fileio.backends import LocalBackend
from mmengine.logging.history_buffer import HistoryBuffer

__all__ = ['SAFE_GLOBALS', 'atomic_write', 'init_cpu_distributed']

_DEFAULT_STATISTICS = {'min', 'max', 'current', 'mean'}


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to the statistics methods of HistoryBuffer."""
    allowed = _DEFAULT_STATISTICS | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refused getattr({obj!r}, {name!r}) while loading a checkpoint: '
        'only HistoryBuffer statistics methods may be resolved')


def _history_buffer_getstate(self: HistoryBuffer) -> dict:
    """Pickle a HistoryBuffer without its (class-level) methods."""
    return {k: v for k, v in self.__dict__.items() if k != 'statistics_methods'}


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


SAFE_GLOBALS = [
    HistoryBuffer,
    (_history_buffer_getattr, 'builtins.getattr'),
    (_history_buffer_getattr, '__builtin__.getattr'),
] + _numpy_safe_globals()

torch.serialization.add_safe_globals(SAFE_GLOBALS)
HistoryBuffer.__getstate__ = _history_buffer_getstate


def atomic_write(data: bytes, filepath: str) -> None:
    """Write ``data`` to ``filepath`` so that readers never see half a file.

    The bytes go to a temporary file in the same folder, are flushed to disk,
    and then replace ``filepath`` in one rename; on failure the temporary
    file is removed and any earlier ``filepath`` is untouched.

    Args:
        data (bytes): Content.
        filepath (str): Target path; its folder is created if missing.
    """
    filepath = os.fspath(filepath)
    folder = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(
        folder, f'.{os.path.basename(filepath)}.{os.getpid()}.tmp')
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _local_put(self: LocalBackend, obj: bytes, filepath) -> None:
    atomic_write(obj, filepath)


def _local_put_text(self: LocalBackend, obj: str, filepath,
                    encoding: str = 'utf-8') -> None:
    atomic_write(obj.encode(encoding), filepath)


LocalBackend.put = _local_put
LocalBackend.put_text = _local_put_text


def init_cpu_distributed(launcher: str, timeout_s: int = 1800) -> bool:
    """Start a gloo process group when a distributed run has no GPU.

    Reads the rendezvous from the environment that ``torchrun``
    (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) or
    ``srun`` (``SLURM_PROCID``, ``SLURM_NTASKS``, ...) provides. With a GPU,
    or for ``launcher='none'``, it does nothing and mmengine's own launcher
    runs.

    Args:
        launcher (str): 'none', 'pytorch', 'slurm' or 'mpi'.
        timeout_s (int): Collective timeout in seconds. Defaults to 1800.

    Returns:
        bool: True if this function initialised the process group.
    """
    if launcher == 'none' or torch.cuda.is_available() or \
            dist.is_initialized():
        return False
    if launcher == 'slurm':
        os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
        os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
        os.environ.setdefault('LOCAL_RANK', os.environ['SLURM_LOCALID'])
        os.environ.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in os.environ:
            import subprocess
            nodes = os.environ['SLURM_NODELIST']
            os.environ['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {nodes} | head -n1')
    elif launcher == 'mpi':
        os.environ.setdefault('RANK', os.environ['OMPI_COMM_WORLD_RANK'])
        os.environ.setdefault('WORLD_SIZE', os.environ['OMPI_COMM_WORLD_SIZE'])
        os.environ.setdefault('LOCAL_RANK',
                              os.environ['OMPI_COMM_WORLD_LOCAL_RANK'])
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise RuntimeError(f'launcher "{launcher}": environment variables '
                           f'{missing} are not set; start the job with '
                           'torchrun (tools/dist_train.sh) or srun')
    os.environ.setdefault('LOCAL_RANK', os.environ['RANK'])
    from datetime import timedelta
    dist.init_process_group(
        backend='gloo', timeout=timedelta(seconds=timeout_s))
    return True
