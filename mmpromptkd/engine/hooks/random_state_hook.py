"""Random generator states in checkpoints, restored where training was."""
import random
from typing import Any, Dict, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook

from mmpromptkd.registry import HOOKS
from .safe_checkpoint_hook import saves_now


def _numpy_rng_state() -> tuple:
    """NumPy's global generator state, in types that load safely."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    # int64 tensor: uint32 arrays are outside the safe-loading allowlist.
    return (name, torch.from_numpy(keys.astype(np.int64)), int(pos),
            int(has_gauss), float(cached))


def _rng_states() -> Dict[str, Any]:
    """This process's Python, NumPy, torch (and CUDA) generator states."""
    states: Dict[str, Any] = dict(python=random.getstate(),
                                  numpy=_numpy_rng_state(),
                                  torch=torch.get_rng_state())
    if torch.cuda.is_available():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save every rank's random states in ``meta['rng_states']``; restore
    them after :class:`ResumableEpochBasedTrainLoop` has skipped the trained
    batches, unless the number of processes or the moment of saving differs
    (a warning says so).
    """

    priority = 'BELOW_NORMAL'

    def __init__(self) -> None:
        self._loaded: Optional[Dict[str, Any]] = None
        self._gathered: Optional[Dict[str, Any]] = None

    def _gather_if_saving(self, runner, by_epoch: bool) -> None:
        """Collect every rank's states on all ranks before a save."""
        hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)),
                    None)
        if get_world_size() > 1 and hook is not None and \
                saves_now(hook, runner, by_epoch):
            self._gathered = dict(
                iter=runner.iter + (0 if by_epoch else 1),
                ranks=all_gather_object(_rng_states()))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        self._gather_if_saving(runner, by_epoch=False)

    def after_train_epoch(self, runner) -> None:
        self._gather_if_saving(runner, by_epoch=True)
        self._loaded = None  # only the first, resumed epoch restores

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
        meta['rng_states'] = dict(iter=step, world_size=world_size,
                                  ranks=ranks)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = (checkpoint.get('meta', None)
                        or {}).get('rng_states', None)

    def after_skip_trained_batches(self, runner) -> None:
        states, self._loaded = self._loaded, None
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
        name, keys, pos, has_gauss, cached = own['numpy']
        np.random.set_state(
            (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(own['torch'])
        if 'cuda' in own and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(own['cuda'])
