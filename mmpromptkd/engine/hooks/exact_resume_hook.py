"""Resume a killed run exactly, from whichever checkpoint it left behind."""
import os
import os.path as osp
import random
import re
import zipfile
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.runner import EpochBasedTrainLoop

from mmpromptkd.registry import HOOKS

# Names CheckpointHook gives by default (``epoch_{}.pth``, ``iter_{}.pth``).
_CHECKPOINT_NAME = re.compile(r'^(?:epoch|iter)_\d+\.pth$')


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file (zip format).

    A copy cut short loses the zip directory at the end of the file, so this
    detects truncation without reading the tensors.

    Args:
        path (str): The file.

    Returns:
        bool: True for a readable zip archive with a ``data.pkl`` record.
    """
    if not osp.isfile(path) or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any(
                name.endswith('data.pkl') for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _numpy_rng_state() -> tuple:
    """NumPy's global generator state, in types that load safely."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    # int64 tensor: uint32 arrays are outside the safe-loading allowlist.
    return (name, torch.from_numpy(keys.astype(np.int64)), int(pos),
            int(has_gauss), float(cached))


def _set_numpy_rng_state(state: tuple) -> None:
    """Inverse of :func:`_numpy_rng_state`."""
    name, keys, pos, has_gauss, cached = state
    np.random.set_state(
        (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


class _ResumedEpochLoader:
    """The train dataloader, for the rest of an epoch already under way.

    ``iter()`` gives the iterator positioned after the batches trained
    before the checkpoint; everything else is the dataloader's.
    """

    def __init__(self, loader: Any, iterator: Iterator) -> None:
        self._loader = loader
        self._iterator = iterator

    def __iter__(self) -> Iterator:
        return self._iterator

    def __len__(self) -> int:
        return len(self._loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Make ``--resume`` after a crash continue exactly where the run was.

    Three gaps of mmengine 0.10.7 are closed:

    1. Choosing the checkpoint (``before_run``, auto-resume only).
       ``CheckpointHook`` writes ``last_checkpoint`` with a plain ``open``
       after each checkpoint, so a kill at that moment leaves it empty, and
       mmengine then tries to resume from ``''``. When ``last_checkpoint``
       is missing, empty, or names a missing or incomplete file, the newest
       complete checkpoint of the checkpoint folder is used instead (with a
       warning); with none, training starts afresh.
    2. Mid-epoch checkpoints (``default_hooks.checkpoint.by_epoch=False``).
       ``EpochBasedTrainLoop`` restarts a resumed epoch at its first batch,
       so the batches trained before the checkpoint would be trained twice.
       Before the first resumed epoch, this hook runs the epoch's dataloader
       over those batches (same sampler order; the same augmentation draws
       in the main process and in the workers) and lets the loop continue
       with the next batch, under its real batch index.
    3. Random state. Checkpoints get the Python, NumPy and torch generator
       states of the main process; after the replay they are restored, so
       that randomness inside the model matches too. Only single-process
       runs restore them: a checkpoint holds rank 0's states only. In
       multi-process runs the replay alone reproduces the data pipeline.

    It runs after ``EpochSeedHook`` and ``DistSamplerSeedHook`` (which set
    the epoch's seeds and sampler order) in ``before_train_epoch``.
    """

    priority = 'BELOW_NORMAL'

    def __init__(self) -> None:
        self._rng_states: Optional[Dict[str, Any]] = None
        self._resumed_loop: Optional[EpochBasedTrainLoop] = None
        self._original_loader: Any = None

    # ------------------------------------------------------------------ #
    # 1. Which checkpoint to resume from.
    @staticmethod
    def _checkpoint_dir(runner) -> str:
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and hook.out_dir is not None:
                if hook.out_dir == runner.work_dir:
                    break
                # CheckpointHook appends the work directory's last level.
                return osp.join(hook.out_dir,
                                osp.basename(osp.normpath(runner.work_dir)))
        return runner.work_dir

    @staticmethod
    def _complete_checkpoints(folder: str) -> List[str]:
        """Complete checkpoints in ``folder``, oldest first."""
        if not osp.isdir(folder):
            return []
        paths = [
            osp.join(folder, name) for name in os.listdir(folder)
            if _CHECKPOINT_NAME.match(name)
        ]
        paths = [p for p in paths if is_complete_checkpoint(p)]
        return sorted(paths, key=lambda p: (osp.getmtime(p), p))

    def before_run(self, runner) -> None:
        if not getattr(runner, '_resume', False) or \
                getattr(runner, '_load_from', None) is not None:
            return
        marker = osp.join(runner.work_dir, 'last_checkpoint')
        recorded = ''
        if osp.isfile(marker):
            with open(marker, encoding='utf-8') as f:
                recorded = f.read().strip()
        if not recorded and not osp.exists(marker):
            return  # a fresh run: mmengine starts from scratch
        if recorded and ('://' in recorded
                         or is_complete_checkpoint(recorded)):
            return
        problem = (f'names {recorded}, which is missing or incomplete'
                   if recorded else 'is empty')
        candidates = self._complete_checkpoints(self._checkpoint_dir(runner))
        if candidates:
            runner._load_from = candidates[-1]
            runner.logger.warning(
                f'{marker} {problem}; resuming from the newest complete '
                f'checkpoint {candidates[-1]} instead')
        else:
            # mmengine would try to resume from the broken record.
            runner._resume = False
            runner.logger.warning(
                f'{marker} {problem} and there is no complete checkpoint; '
                'training starts afresh')

    # ------------------------------------------------------------------ #
    # 3. Random state in checkpoints.
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states: Dict[str, Any] = dict(
            iter=checkpoint.get('meta', {}).get('iter', runner.iter),
            world_size=get_world_size(),
            python=random.getstate(),
            numpy=_numpy_rng_state(),
            torch=torch.get_rng_state())
        if torch.cuda.is_available():
            states['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint.setdefault('meta', {})['rng_states'] = states

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._rng_states = (checkpoint.get('meta', None) or {}).get(
            'rng_states', None)

    def _restore_rng(self, runner) -> None:
        states, self._rng_states = self._rng_states, None
        if not states or states.get('iter') != runner.iter:
            return
        if states.get('world_size') != 1 or get_world_size() != 1:
            return
        random.setstate(states['python'])
        _set_numpy_rng_state(states['numpy'])
        torch.set_rng_state(states['torch'])
        if 'cuda' in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states['cuda'])

    # ------------------------------------------------------------------ #
    # 2. Continue an epoch in the middle.
    def before_train_epoch(self, runner) -> None:
        loop = runner.train_loop
        if not isinstance(loop, EpochBasedTrainLoop):
            return  # IterBasedTrainLoop skips trained batches itself
        loader = loop.dataloader
        done = runner.iter - runner.epoch * len(loader)
        if done <= 0:
            self._rng_states = None
            return
        if done > len(loader):
            raise RuntimeError(
                f'the checkpoint is at iteration {runner.iter} of epoch '
                f'{runner.epoch + 1}, but an epoch now has {len(loader)} '
                'iterations: the training data or batch size changed since '
                'it was written')
        iterator = iter(loader)
        for _ in range(done):
            next(iterator)
        self._restore_rng(runner)
        runner.logger.info(
            f'Resuming epoch {runner.epoch + 1} after batch {done} of '
            f'{len(loader)}: replayed the batches trained before the '
            'checkpoint')
        self._resumed_loop = loop
        self._original_loader = loader
        loop.dataloader = _ResumedEpochLoader(loader, iterator)
        run_iter = loop.run_iter

        def run_iter_from(idx: int, data_batch: Any) -> None:
            run_iter(idx + done, data_batch)

        # An instance attribute, removed after the epoch.
        loop.run_iter = run_iter_from

    def after_train_epoch(self, runner) -> None:
        loop = self._resumed_loop
        if loop is None:
            return
        loop.dataloader = self._original_loader
        del loop.run_iter
        self._resumed_loop = None
        self._original_loader = None
