"""Helpers shared by ``tools/train.py`` and ``tools/test.py``."""
import contextlib
import glob
import itertools
import json
import os
import os.path as osp
import socket
import sys
import time
from typing import Iterator, List, Optional, Sequence

import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict
from mmengine.device import (is_cuda_available, is_mlu_available,
                             is_musa_available, is_npu_available)
from mmengine.runner import Runner

from mmpromptkd.engine.hooks.safe_checkpoint_hook import checkpoint_folder
from mmpromptkd.fileio import atomic_write
from mmpromptkd.registry import RUNNERS
from mmpromptkd.utils.state_dict_check import CheckpointMismatchError

__all__ = [
    'DATALOADER_FIELDS', 'build_runner', 'close_distributed', 'enable_amp',
    'find_existing_checkpoints', 'check_work_dir_is_free',
    'hinting_how_to_continue', 'init_cpu_distributed', 'lock_work_dir',
    'naming_the_checkpoint', 'resolve_work_dir', 'set_dataloader_defaults',
    'setup_cpu_distributed'
]

DATALOADER_FIELDS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def resolve_work_dir(cfg: Config, work_dir: Optional[str],
                     config_path: str) -> str:
    """Set ``cfg.work_dir``: command line, then config, then config name.

    Args:
        cfg (Config): The loaded config; modified in place.
        work_dir (str, optional): ``--work-dir`` of the command line.
        config_path (str): Path of the config file.

    Returns:
        str: The work directory.

    Raises:
        ValueError: If the work directory is the config's own folder
            (mmengine would overwrite the config with the merged one).
    """
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        name = osp.splitext(osp.basename(config_path))[0]
        cfg.work_dir = osp.join('./work_dirs', name)
    # mmengine dumps the merged config as <work_dir>/<config name>.
    dumped = osp.join(cfg.work_dir, osp.basename(config_path))
    if osp.exists(config_path) and osp.exists(dumped) and \
            osp.samefile(dumped, config_path):
        raise ValueError(
            f'work directory {cfg.work_dir} holds the config {config_path}: '
            'the run would replace it with the merged config (with the '
            '--cfg-options baked in). Choose another --work-dir.')
    return cfg.work_dir


def set_dataloader_defaults(cfg: Config,
                            fields: Sequence = DATALOADER_FIELDS,
                            pin_memory: bool = True,
                            persistent_workers: bool = True) -> None:
    """Give the dataloaders of ``cfg`` mmpretrain's default options.

    Options in a dataloader config win, except that ``False`` for either
    argument disables the option everywhere.

    Args:
        cfg (Config): The config; modified in place.
        fields (Sequence[str]): Dataloader fields to update. Defaults to
            :data:`DATALOADER_FIELDS`.
        pin_memory (bool): Whether memory may be pinned. Defaults to True.
        persistent_workers (bool): Whether workers may persist between
            epochs. Defaults to True.
    """
    for field in fields:
        loader = cfg.get(field, None)
        if loader is None:
            continue
        merged = ConfigDict(
            pin_memory=pin_memory and torch.cuda.is_available(),
            collate_fn=dict(type='default_collate'))
        merged.update(loader)
        if not pin_memory:
            merged.pin_memory = False
        workers = merged.get('num_workers', 0)
        if persistent_workers and workers > 0:
            merged.setdefault('persistent_workers', True)
        else:
            merged.persistent_workers = False
        cfg[field] = merged


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to automatic mixed precision.

    ``AmpOptimWrapper`` (float16) with an accelerator, else
    :class:`AutocastOptimWrapper` (bfloat16).

    Args:
        cfg (Config): The config; ``cfg.optim_wrapper`` is modified in place.

    Raises:
        ValueError: If the config uses another optimizer wrapper type.
    """
    optim_wrapper = cfg.optim_wrapper
    known = ('OptimWrapper', 'AmpOptimWrapper', 'AutocastOptimWrapper')
    if optim_wrapper.get('type', 'OptimWrapper') not in known:
        raise ValueError(
            f'--amp replaces the optimizer wrapper, but the config uses '
            f'{optim_wrapper.type}; set mixed precision in the config '
            'instead.')
    # The devices that mmengine's AmpOptimWrapper accepts.
    if is_cuda_available() or is_npu_available() or is_mlu_available() \
            or is_musa_available():
        optim_wrapper.type = 'AmpOptimWrapper'
        optim_wrapper.setdefault('loss_scale', 'dynamic')
        optim_wrapper.setdefault('dtype', 'float16')
    else:
        optim_wrapper.type = 'AutocastOptimWrapper'
        optim_wrapper.setdefault('dtype', 'bfloat16')


def init_cpu_distributed(launcher: str, timeout_s: int = 1800) -> bool:
    """Start a gloo process group when a distributed run has no GPU.

    The rendezvous comes from the environment of ``torchrun``, ``srun`` or
    MPI.

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


def setup_cpu_distributed(cfg: Config, launcher: str) -> bool:
    """Prepare a distributed run on a machine without a GPU.

    mmengine's launchers call ``torch.cuda.set_device``, so the gloo group
    is started beforehand; DDP refuses ``device_ids`` for CPU modules.

    Args:
        cfg (Config): The config; ``model_wrapper_cfg`` and
            ``env_cfg.dist_cfg`` are modified in place when a group is
            started.
        launcher (str): 'none', 'pytorch', 'slurm' or 'mpi'.

    Returns:
        bool: True if a CPU process group was started.
    """
    dist_cfg = (cfg.get('env_cfg', None) or {}).get('dist_cfg', None) or {}
    if not init_cpu_distributed(
            launcher, timeout_s=dist_cfg.get('timeout', 1800)):
        return False
    wrapper = ConfigDict(cfg.get('model_wrapper_cfg', None) or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    # The Runner only reads the top-level flag without a wrapper config.
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.device_ids = None
    cfg.model_wrapper_cfg = wrapper
    env_cfg = cfg.get('env_cfg', None) or ConfigDict()
    env_cfg.setdefault('dist_cfg', ConfigDict())
    env_cfg.dist_cfg.backend = 'gloo'
    cfg.env_cfg = env_cfg
    return True


def find_existing_checkpoints(cfg: Config) -> List[str]:
    """Checkpoints that a run of ``cfg`` could overwrite.

    Args:
        cfg (Config): The config, with ``work_dir`` set.

    Returns:
        list[str]: Sorted paths of ``*.pth`` files and ``last_checkpoint``
        markers in the checkpoint directories.
    """
    hook = (cfg.get('default_hooks', None) or {}).get('checkpoint', None)
    out_dir = hook.get('out_dir', None) if hook else None
    found: List[str] = []
    for directory in {cfg.work_dir, checkpoint_folder(cfg.work_dir, out_dir)}:
        found += glob.glob(osp.join(glob.escape(directory), '*.pth'))
        marker = osp.join(directory, 'last_checkpoint')
        if osp.isfile(marker):
            found.append(marker)
    return sorted(set(found))


def check_work_dir_is_free(cfg: Config) -> None:
    """Refuse a fresh run that would overwrite earlier checkpoints.

    Args:
        cfg (Config): The config, with ``work_dir`` and ``resume`` set.

    Raises:
        FileExistsError: If a fresh run would write into a directory that
            already holds checkpoints.
    """
    if cfg.get('resume', False):
        return
    existing = find_existing_checkpoints(cfg)
    if not existing:
        return
    shown = ', '.join(existing[:5]) + (
        f' and {len(existing) - 5} more' if len(existing) > 5 else '')
    raise FileExistsError(
        f'work_dir {cfg.work_dir} already holds checkpoints ({shown}); a new '
        'run would overwrite them. Continue that run with --resume (or '
        '--resume CHECKPOINT), or choose another --work-dir.')


WORK_DIR_LOCK = '.mmpromptkd-run.lock'
WORK_DIR_HOLDER = '.mmpromptkd-run.json'


def lock_work_dir(cfg: Config):
    """Take an exclusive lock on the work directory for this run.

    An operating-system file lock, so a killed run never blocks the next
    one; only rank 0 takes it.

    Args:
        cfg (Config): The config, with ``work_dir`` set.

    Returns:
        filelock.FileLock | None: The held lock (keep a reference for the
        life of the run), or None on ranks other than 0.

    Raises:
        FileNotFoundError: If the work directory is a dangling symbolic
            link.
        RuntimeError: If another run holds the work directory.
    """
    from filelock import FileLock, Timeout
    rank = os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0'))
    if rank != '0':
        return None
    work_dir = cfg.work_dir
    if osp.islink(work_dir) and not osp.exists(work_dir):
        raise FileNotFoundError(
            f'work_dir {work_dir} is a symbolic link to '
            f'{os.readlink(work_dir)}, which does not exist; create its '
            'target or choose another --work-dir')
    os.makedirs(work_dir, exist_ok=True)
    lock = FileLock(osp.join(work_dir, WORK_DIR_LOCK), timeout=0)
    holder_file = osp.join(work_dir, WORK_DIR_HOLDER)
    try:
        lock.acquire()
    except Timeout:
        try:
            with open(holder_file) as f:
                holder = json.load(f)
            who = (f'process {holder["pid"]} on {holder["host"]}, started '
                   f'{holder["started"]}: {holder["command"]}')
        except (OSError, ValueError, KeyError):
            who = 'another process'
        raise RuntimeError(
            f'work_dir {work_dir} is in use by another run ({who}); wait '
            'for it to end or choose another --work-dir') from None
    atomic_write(
        json.dumps(
            dict(pid=os.getpid(), host=socket.gethostname(),
                 started=time.strftime('%Y-%m-%d %H:%M:%S'),
                 command=' '.join(sys.argv))).encode(), holder_file)
    return lock


#: Numbers the runs of this process (see :func:`build_runner`).
_RUN_NUMBERS = itertools.count()


def build_runner(cfg: Config) -> Runner:
    """Build the Runner that ``cfg`` describes.

    Args:
        cfg (Config): The final config.

    Returns:
        Runner: ``Runner.from_cfg(cfg)``, or the config's ``runner_type``.
    """
    named = not cfg.get('experiment_name')
    if named:
        # mmengine names a run's logger, message hub and registry scope
        # '<config>_<second>': a second run in one process within that
        # second would log into the first's closed file, in its scope.
        stem = osp.splitext(osp.basename(cfg.filename or 'run'))[0]
        cfg.experiment_name = \
            f'{stem}_{time.strftime("%Y%m%d_%H%M%S")}_{next(_RUN_NUMBERS)}'
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else \
        RUNNERS.build(cfg)
    if named:  # not written into the work dir's config
        runner.cfg.pop('experiment_name')
    return runner


def close_distributed() -> None:
    """Wait for every process, then destroy the process group, if any."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    dist.destroy_process_group()


@contextlib.contextmanager
def naming_the_checkpoint(cfg: Config) -> Iterator[None]:
    """Put the checkpoint file into weight-mismatch errors of a run.

    Models check a checkpoint inside ``load_state_dict``, where the file is
    unknown.

    Args:
        cfg (Config): The final config of the run.

    Yields:
        None: Run ``runner.train()`` or ``runner.test()`` inside.
    """
    try:
        yield
    except CheckpointMismatchError as e:
        if e.source is not None:
            raise
        from mmengine.runner.checkpoint import find_latest_checkpoint
        path = cfg.get('load_from', None) or (
            cfg.get('resume', False)
            and find_latest_checkpoint(cfg.work_dir)) or 'the checkpoint'
        raise CheckpointMismatchError(f'{path}: {e}', path) from e


#: What Ctrl-C says when the work directory holds a checkpoint, and not.
CONTINUE_HINT = 'continue from the last checkpoint with --resume'
NO_CHECKPOINT_HINT = ('no checkpoint was written yet: --resume would start '
                      'over from the beginning')


@contextlib.contextmanager
def hinting_how_to_continue(cfg: Config) -> Iterator[None]:
    """Give a Ctrl-C of training the way to go on, as its message.

    Args:
        cfg (Config): The final config of the run, with ``work_dir`` set.

    Yields:
        None: Run ``runner.train()`` inside.

    Raises:
        KeyboardInterrupt: On Ctrl-C, with the hint as its message.
    """
    try:
        yield
    except KeyboardInterrupt:
        hint = CONTINUE_HINT if find_existing_checkpoints(cfg) else \
            NO_CHECKPOINT_HINT
        raise KeyboardInterrupt(hint) from None
