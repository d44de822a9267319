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
    hook.after_train_iter(
        runner_at(4, 0), 4, outputs=dict(loss=1.5, loss_kd=1.5))


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf])
def test_non_finite_loss_stops(value):
    hook = HOOKS.build(dict(type='NonFiniteLossHook'))
    with pytest.raises(
            FloatingPointError,
            match=r'loss_kd is .* at iteration 8 \(epoch 2'):
        hook.after_train_iter(
            runner_at(7, 1), 3, outputs=dict(loss_kd=value, acc=1.0))


class TestLastGoodCheckpoint:
    """The message points to a checkpoint whose weights gave finite losses."""

    @staticmethod
    def _save(work_dir, step, value):
        import torch
        path = work_dir / f'iter_{step}.pth'
        torch.save(
            dict(
                meta=dict(iter=step),
                state_dict={'prompt': torch.full((2, 3), value)}), path)
        return path

    def _message(self, work_dir, failing_iter):
        hook = HOOKS.build(dict(type='NonFiniteLossHook'))
        runner = SimpleNamespace(
            iter=failing_iter, epoch=0, work_dir=str(work_dir))
        with pytest.raises(FloatingPointError) as e:
            hook.after_train_iter(runner, 0, outputs=dict(loss=math.inf))
        return str(e.value)

    def test_checkpoint_that_produced_the_loss_is_not_good(self, tmp_path):
        good = self._save(tmp_path, 2, 0.5)
        # Finite but diverged: these weights gave the infinite loss.
        huge = self._save(tmp_path, 4, 1e30)
        message = self._message(tmp_path, failing_iter=4)
        assert f'The last good checkpoint is {good}' in message
        assert f'{huge} (its weights produced this loss)' in message

    def test_non_finite_weights_are_not_good(self, tmp_path):
        good = self._save(tmp_path, 2, 0.5)
        nan = self._save(tmp_path, 4, math.nan)
        message = self._message(tmp_path, failing_iter=7)
        assert f'The last good checkpoint is {good}' in message
        assert f'{nan} (NaN or infinite values in' in message

    def test_no_good_checkpoint(self, tmp_path):
        self._save(tmp_path, 4, math.inf)
        (tmp_path / 'junk.pth').write_bytes(b'\x00' * 10)
        message = self._message(tmp_path, failing_iter=9)
        assert 'No checkpoint of the work directory is good' in message
        assert 'junk.pth (unreadable' in message
        assert 'No checkpoint was written' in self._message(
            tmp_path / 'empty', failing_iter=1)
