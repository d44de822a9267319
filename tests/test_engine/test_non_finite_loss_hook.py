"""NonFiniteLossHook stops at the first NaN / inf loss."""
import math
from types import SimpleNamespace

import pytest

import mmpromptkd  # noqa: F401
from mmpromptkd.registry import HOOKS


def runner_at(iteration, epoch):
    return SimpleNamespace(iter=iteration, epoch=epoch, work_dir='work_dirs/x')


def test_finite_loss_passes():
    hook = HOOKS.build(dict(type='NonFiniteLossHook'))
    hook.after_train_iter(runner_at(4, 0), 4, outputs=dict(loss=1.5,
                                                          loss_kd=1.5))


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf])
def test_non_finite_loss_stops(value):
    hook = HOOKS.build(dict(type='NonFiniteLossHook'))
    with pytest.raises(FloatingPointError,
                       match=r'loss_kd is .* at iteration 8 \(epoch 2'):
        hook.after_train_iter(
            runner_at(7, 1), 3, outputs=dict(loss_kd=value, acc=1.0))
