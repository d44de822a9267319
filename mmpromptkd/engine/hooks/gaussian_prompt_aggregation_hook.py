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
    r"""Replace the trained parameters by their Gaussian-weighted epoch mean.

    After every epoch :math:`e = 1 .. E` the trainable parameters
    :math:`\theta_e` (those with ``requires_grad``) are accumulated into

    .. math::

        \bar\theta = \sum_{e=1}^{E} w_e \theta_e, \quad
        w_e = \frac{g(e)}{\sum_{k=1}^{E} g(k)}, \quad
        g(e) = \exp\left(-\frac{(e - \mu)^2}{2 \sigma^2}\right)

    and after the last epoch :math:`\bar\theta` replaces them. The hook runs
    before ``CheckpointHook``, so the last checkpoint holds the aggregate;
    the running aggregate is saved in checkpoints for ``--resume``.

    Args:
        mean (float): :math:`\mu`, an epoch in ``[1, E]``. Defaults to 15.0.
        std (float): :math:`\sigma > 0`. Defaults to 1.0.
    """

    priority = 'LOW'
    #: Key of the hook's state in checkpoints.
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
        """Normalised Gaussian weights of the epochs ``1 .. max_epochs``.

        Args:
            mean (float): Mean, in ``[1, max_epochs]``.
            std (float): Standard deviation, positive.
            max_epochs (int): Number of epochs ``E``.

        Returns:
            list[float]: ``w_1 .. w_E``, summing to 1.
        """
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
        return {
            name: param
            for name, param in model.named_parameters() if param.requires_grad
        }

    def before_train(self, runner) -> None:
        """Compute the weights, start or restore the aggregate."""
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
        start = runner.epoch
        if start == 0:
            self.epochs = []
            # Accumulated in at least float32.
            self._aggregate = {
                name: torch.zeros_like(p, dtype=torch.promote_types(
                    p.dtype, torch.float32)).detach()
                for name, p in params.items()
            }
        else:
            self._restore(params, start)
        self._loaded = None
        runner.logger.info(
            f'Gaussian prompt aggregation of {len(params)} tensors, mean '
            f'{self.mean}, std {self.std}, epoch weights ' +
            ', '.join(f'{w:.4g}' for w in self.weights))

    def _restore(self, params: Dict[str, nn.Parameter], start: int) -> None:
        """Take the aggregate of epochs ``1 .. start`` from the checkpoint."""
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
        self._aggregate = {
            name: aggregate[name].to(
                device=p.device,
                dtype=torch.promote_types(p.dtype, torch.float32)).clone()
            for name, p in params.items()
        }

    def after_train_epoch(self, runner) -> None:
        """Accumulate this epoch; after the last, write the aggregate."""
        epoch = runner.epoch + 1
        params = self._trainable(runner)
        weight = self.weights[epoch - 1]
        with torch.no_grad():
            for name, param in params.items():
                acc = self._aggregate[name]
                acc.add_(param.detach().to(acc.dtype), alpha=weight)
        self.epochs.append(epoch)
        if epoch == self.max_epochs:
            with torch.no_grad():
                for name, param in params.items():
                    param.copy_(self._aggregate[name].to(param.dtype))
            runner.logger.info(
                f'Gaussian prompt aggregation: {len(params)} trainable '
                f'tensors replaced by their weighted mean over epochs '
                f'1..{epoch}')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Save the running aggregate with the checkpoint."""
        if not self._aggregate:
            return
        checkpoint[self.checkpoint_key] = dict(
            mean=self.mean,
            std=self.std,
            max_epochs=self.max_epochs,
            epochs=list(self.epochs),
            aggregate={
                k: v.detach().cpu().clone()
                for k, v in self._aggregate.items()
            })

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the saved aggregate for ``before_train``."""
        self._loaded = checkpoint.get(self.checkpoint_key)
