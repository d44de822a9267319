"""Gaussian prompt aggregation (GPA) of PromptSRC as an mmengine hook."""
import math
from typing import Dict, List, Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop
from torch import nn

from mmpromptkd.registry import HOOKS


@HOOKS.register_module()
class GaussianPromptAggregationHook(Hook):
    """Replace the trained parameters by their Gaussian-weighted epoch mean.

    Runs before ``CheckpointHook``; see docs/teachers.md.

    Args:
        mean (float): The epoch of the largest weight, in ``[1, E]``.
        std (float): The spread of the weights, in epochs.
    """

    priority = 'LOW'
    checkpoint_key = 'gaussian_prompt_aggregation'

    def __init__(self, mean: float = 15.0, std: float = 1.0) -> None:
        if not (isinstance(mean, (int, float)) and math.isfinite(mean)):
            raise ValueError(f'GPA mean must be a finite number, got {mean!r}')
        if not (isinstance(std, (int, float)) and std > 0
                and math.isfinite(std)):
            raise ValueError(f'GPA std must be a positive number, got {std!r}')
        self.mean = float(mean)
        self.std = float(std)
        self.max_epochs: Optional[int] = None
        self.weights: List[float] = []
        self.epochs: List[int] = []
        self._aggregate: Dict[str, torch.Tensor] = {}
        self._loaded: Optional[dict] = None

    @staticmethod
    def gaussian_weights(mean: float, std: float,
                         max_epochs: int) -> List[float]:
        """Normalised Gaussian weights of the epochs ``1 .. max_epochs``."""
        if max_epochs < 1:
            raise ValueError(f'max_epochs must be >= 1, got {max_epochs}')
        if not 1 <= mean <= max_epochs:
            raise ValueError(
                f'GaussianPromptAggregationHook: mean={mean} is outside the '
                f'epochs 1..{max_epochs} of the schedule; the aggregate '
                'would be dominated by one end of the run. Choose a mean in '
                f'[1, {max_epochs}] (mean=15 fits the 20-epoch schedule)')
        # In log space, so that a small std cannot underflow every weight.
        logs = [-(e - mean)**2 / (2 * std**2)
                for e in range(1, max_epochs + 1)]
        top = max(logs)
        g = [math.exp(v - top) for v in logs]
        total = math.fsum(g)
        return [v / total for v in g]

    @staticmethod
    def _trainable(runner) -> Dict[str, nn.Parameter]:
        """The model's parameters with ``requires_grad``, by name."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        return {n: p for n, p in model.named_parameters() if p.requires_grad}

    def before_train(self, runner) -> None:
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            raise TypeError('GaussianPromptAggregationHook aggregates per '
                            'epoch and needs an epoch-based training loop, '
                            f'got {type(runner.train_loop).__name__}')
        self.max_epochs = runner.max_epochs
        self.weights = self.gaussian_weights(self.mean, self.std,
                                             self.max_epochs)
        params = self._trainable(runner)
        if not params:
            raise ValueError('GaussianPromptAggregationHook: the model has '
                             'no trainable parameters to aggregate')
        if runner.epoch == 0:
            self.epochs = []
            start = {n: torch.zeros_like(p) for n, p in params.items()}
        else:
            start = self._restored(params, runner.epoch)
        self._aggregate = {
            n: start[n].to(device=p.device, dtype=torch.promote_types(
                p.dtype, torch.float32)).detach().clone()
            for n, p in params.items()}
        self._loaded = None
        runner.logger.info(
            f'Gaussian prompt aggregation of {len(params)} tensors, mean '
            f'{self.mean}, std {self.std}, epoch weights ' +
            ', '.join(f'{w:.4g}' for w in self.weights))

    def _restored(self, params: Dict[str, nn.Parameter],
                  start: int) -> Dict[str, torch.Tensor]:
        """The aggregate of epochs ``1 .. start`` from the checkpoint."""
        state = self._loaded
        if state is None:
            raise RuntimeError(
                f'resuming at epoch {start}, but the checkpoint holds no '
                'Gaussian prompt aggregation state: the aggregate of the '
                'epochs before it is unknown. Resume from a checkpoint of a '
                'run with GaussianPromptAggregationHook, or train again')
        mine = dict(mean=self.mean, std=self.std, max_epochs=self.max_epochs)
        theirs = {k: state.get(k) for k in mine}
        if mine != theirs:
            raise ValueError(f'the checkpoint aggregated with {theirs}, this '
                             f'run with {mine}; they must match to resume')
        epochs = list(state.get('epochs', []))
        if epochs != list(range(1, start + 1)):
            raise ValueError(f'the checkpoint aggregated epochs {epochs}, '
                             f'but training resumes after epoch {start}')
        aggregate = state['aggregate']
        if set(aggregate) != set(params) or any(
                aggregate[k].shape != params[k].shape for k in params):
            raise ValueError(
                'the aggregate in the checkpoint does not match the '
                f'trainable parameters: {sorted(aggregate)} vs '
                f'{sorted(params)}')
        self.epochs = epochs
        return aggregate

    def after_train_epoch(self, runner) -> None:
        epoch = runner.epoch + 1
        params = self._trainable(runner)
        weight = self.weights[epoch - 1]
        with torch.no_grad():
            for name, param in params.items():
                acc = self._aggregate[name]
                acc.add_(param.detach().to(acc.dtype), alpha=weight)
                if epoch == self.max_epochs:
                    param.copy_(acc.to(param.dtype))
        self.epochs.append(epoch)
        if epoch == self.max_epochs:
            runner.logger.info(
                f'Gaussian prompt aggregation: {len(params)} trainable '
                f'tensors replaced by their weighted mean over epochs '
                f'1..{epoch}')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self._aggregate:
            return
        checkpoint[self.checkpoint_key] = dict(
            mean=self.mean, std=self.std, max_epochs=self.max_epochs,
            epochs=list(self.epochs),
            aggregate={k: v.detach().cpu().clone()
                       for k, v in self._aggregate.items()})

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get(self.checkpoint_key)
