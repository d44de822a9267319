"""Resume a killed run exactly, from whichever checkpoint it left behind."""
import os
import os.path as osp
import random
import re
import zipfile
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
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


def _rng_states() -> Dict[str, Any]:
    """This process's Python, NumPy, torch (and CUDA) generator states."""
    states: Dict[str, Any] = dict(
        python=random.getstate(),
        numpy=_numpy_rng_state(),
        torch=torch.get_rng_state())
    if torch.cuda.is_available():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


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
    3. Random state. Checkpoints get the Python, NumPy, torch (and CUDA)
       generator states of the main process of every rank; after the
       replay each rank restores its own, so that randomness inside the
       model matches too. Only rank 0 saves (``Runner.save_checkpoint`` is
       master-only), so the states are gathered just before
       ``CheckpointHook`` saves, by the same rule it uses. With a different
       number of processes than the checkpoint's, or from a checkpoint
       saved at another moment (a best checkpoint), they are not restored
       (a warning says so) and the replay alone reproduces the data
       pipeline.

    It runs after ``EpochSeedHook`` and ``DistSamplerSeedHook`` (which set
    the epoch's seeds and sampler order) in ``before_train_epoch``.
    """

    priority = 'BELOW_NORMAL'

    def __init__(self) -> None:
        self._rng_states: Optional[Dict[str, Any]] = None
        self._gathered: Optional[Dict[str, Any]] = None
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
    @staticmethod
    def _saves_now(runner, by_epoch: bool) -> bool:
        """Whether ``CheckpointHook`` saves after this iteration / epoch."""
        hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)),
                    None)
        if hook is None or hook.by_epoch != by_epoch:
            return False
        if by_epoch:
            return hook.every_n_epochs(
                runner, hook.interval,
                hook.save_begin) or (hook.save_last
                                     and hook.is_last_train_epoch(runner))
        return hook.every_n_train_iters(
            runner, hook.interval,
            hook.save_begin) or (hook.save_last
                                 and hook.is_last_train_iter(runner))

    def _gather_if_saving(self, runner, by_epoch: bool) -> None:
        """Collect every rank's states on all ranks before a save.

        This hook runs before ``CheckpointHook`` (higher priority), so the
        states are those the save would see.
        """
        if get_world_size() > 1 and self._saves_now(runner, by_epoch):
            self._gathered = dict(
                iter=runner.iter + (0 if by_epoch else 1),
                ranks=all_gather_object(_rng_states()))

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Any = None,
                         outputs: Any = None) -> None:
        self._gather_if_saving(runner, by_epoch=False)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.setdefault('meta', {})
        step = meta.get('iter', runner.iter)
        world_size = get_world_size()
        gathered, self._gathered = self._gathered, None
        if world_size == 1:
            ranks = [_rng_states()]
        elif gathered is not None and gathered['iter'] == step:
            ranks = gathered['ranks']
        else:  # e.g. a best checkpoint, saved after validation
            ranks = []
        meta['rng_states'] = dict(
            iter=step, world_size=world_size, ranks=ranks)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._rng_states = (checkpoint.get('meta', None)
                            or {}).get('rng_states', None)

    def _restore_rng(self, runner) -> None:
        states, self._rng_states = self._rng_states, None
        if not states or states.get('iter') != runner.iter:
            return
        # Checkpoints of earlier versions hold one process's states.
        ranks = states.get('ranks', [states])
        world_size = get_world_size()
        problem = None
        if states.get('world_size') != world_size:
            problem = (
                f'the checkpoint was saved by {states.get("world_size")}'
                f' process(es), this run has {world_size}')
        elif len(ranks) != world_size:
            problem = ('the checkpoint holds no random states of the other '
                       'processes (it was not saved on CheckpointHook\'s '
                       'schedule)')
        if problem:
            runner.logger.warning(
                f'{problem}: random numbers drawn by the model after the '
                'resume will differ from the interrupted run')
            return
        own = ranks[get_rank()]
        random.setstate(own['python'])
        _set_numpy_rng_state(own['numpy'])
        torch.set_rng_state(own['torch'])
        if 'cuda' in own and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(own['cuda'])

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
        self._gather_if_saving(runner, by_epoch=True)
        loop = self._resumed_loop
        if loop is None:
            return
        loop.dataloader = self._original_loader
        del loop.run_iter
        self._resumed_loop = None
        self._original_loader = None
