"""Student-to-teacher feature projector with globally synchronised BN."""
from typing import List, Optional

import torch
import torch.distributed as dist
import torch.nn as nn
# 1 when not running distributed; a module name tests patch.
from mmengine.dist import get_world_size as _dist_world_size
from torch import Tensor

from mmpromptkd.registry import MODELS
from ..utils.reference_fp16 import convert_to_reference_fp16


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over all processes of the default group."""
    # torch.distributed.nn.functional.all_reduce (the same backward rule)
    # is deprecated and warns on every call, i.e. every training step.

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:  # type: ignore[override]
        tensor = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return _AllReduceSum.apply(grad)


class _GlobalBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` whose training statistics cover the global batch."""
    # Unlike nn.SyncBatchNorm it works on CPU (gloo) and with batches of
    # different, even empty, sizes per process.

    def __init__(self, num_features: int, sync_stats: bool = True,
                 **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.sync_stats = sync_stats

    def forward(self, x: Tensor) -> Tensor:
        if not (self.sync_stats and self.training
                and _dist_world_size() > 1):
            return super().forward(x)
        if x.dim() not in (2, 3):
            raise ValueError(f'expected 2D or 3D input (got {x.dim()}D '
                             'input)')
        dims: List[int] = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()  # statistics in float32, as torch's BN kernels do
        local_count = x.numel() // max(x.shape[1], 1)
        # One collective for the sums and the row count together.
        packed = _AllReduceSum.apply(torch.cat(
            [xf.sum(dims), xf.new_full((1, ), float(local_count))]))
        global_sum, count = packed[:-1], packed[-1].detach()
        n = int(count.item())
        if n <= 1:
            raise ValueError('Expected more than 1 value per channel over '
                             f'the global batch when training, got {n}.')
        mean = global_sum / n
        # Two-pass variance: sum of squared deviations from the global mean,
        # numerically safer than E[x^2] - E[x]^2.
        centred = xf - mean.view(shape)
        sq_sum = _AllReduceSum.apply((centred * centred).sum(dims))
        var = sq_sum / n  # biased, used for normalisation
        if self.track_running_stats and self.running_mean is not None:
            self._update_running_stats(mean.detach(), var.detach(), n)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, var: Tensor,
                              n: int) -> None:
        """Update running statistics like ``nn.BatchNorm1d`` does."""
        self.num_batches_tracked.add_(1)
        # None: the cumulative moving average.
        factor = 1.0 / float(self.num_batches_tracked) \
            if self.momentum is None else self.momentum
        unbiased = (var * (n / (n - 1))).to(self.running_var.dtype)
        mean = mean.to(self.running_mean.dtype)
        self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)


@MODELS.register_module()
class FeatureProjector(nn.Module):
    """``fc1 -> bn -> relu -> fc2``: student features to the teacher's
    space (the official ``VPT_image_trans.conv1.{0,1,3}`` convert to these).

    Args:
        in_channels (int): Student feature dimension.
        out_channels (int): Teacher feature dimension.
        hidden_channels (int, optional): Hidden width; None: out_channels.
        sync_stats (bool): BatchNorm statistics over the global batch in
            distributed training.
        bn_eps (float): ``eps`` of the BatchNorm.
        bn_momentum (float, optional): ``momentum`` of the BatchNorm.
        reference_fp16 (bool): fp16 linear layers and fp32 BatchNorm, as the
            official pure-fp16 training.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 hidden_channels: Optional[int] = None,
                 sync_stats: bool = True, bn_eps: float = 1e-5,
                 bn_momentum: Optional[float] = 0.1,
                 reference_fp16: bool = False) -> None:
        super().__init__()
        if hidden_channels is None:
            hidden_channels = out_channels
        for name, value in (('in_channels', in_channels),
                            ('out_channels', out_channels),
                            ('hidden_channels', hidden_channels)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f'{name} must be a positive int, got {value!r}.')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.fc1 = nn.Linear(in_channels, hidden_channels)
        self.bn = _GlobalBatchNorm1d(hidden_channels, sync_stats=sync_stats,
                                     eps=bn_eps, momentum=bn_momentum)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_channels, out_channels)
        if reference_fp16:
            convert_to_reference_fp16(self)

    @property
    def sync_stats(self) -> bool:
        """bool: Whether BN statistics are synchronised across processes."""
        return self.bn.sync_stats

    def forward(self, x: Tensor) -> Tensor:
        """Project (B, in_channels) features to (B, out_channels)."""
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'Expected input of shape (B, {self.in_channels}), got '
                f'{tuple(x.shape)}.')
        return self.fc2(self.relu(self.bn(self.fc1(x))))

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, '
                f'hidden_channels={self.hidden_channels}, '
                f'out_channels={self.out_channels}, '
                f'sync_stats={self.sync_stats}')
