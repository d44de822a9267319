"""GaussianPromptAggregationHook: weights, aggregate, checkpoint, resume."""
import math
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import get_priority
from torch import nn
from torch.utils.data import DataLoader, Dataset

import mmpromptkd  # noqa: F401
from mmpromptkd.registry import HOOKS
from mmpromptkd.engine.runner import SafeLoadingRunner
from mmpromptkd.utils import load_checkpoint_file

KEY = 'gaussian_prompt_aggregation'


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    """Tiny models: with the few cores shared, more threads only contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class ToyModel(BaseModel):
    """Two trainable tensors and a frozen one, regressing fixed targets."""

    def __init__(self):
        super().__init__()
        self.prompt = nn.Parameter(torch.randn(2, 3))
        self.proj = nn.Linear(3, 2)
        self.frozen = nn.Parameter(torch.randn(3), requires_grad=False)

    def forward(self, inputs, targets=None, mode='tensor'):
        x = torch.stack(inputs)
        out = self.proj(x * self.frozen) + x @ self.prompt.t()
        if mode == 'loss':
            return dict(loss=((out - torch.stack(targets))**2).mean())
        return out


class ToyData(Dataset):

    def __init__(self):
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(8, 3, generator=gen)
        self.y = torch.randn(8, 2, generator=gen)

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=self.x[i], targets=self.y[i])


class RecordHook(Hook):
    """Copies the trainable parameters after each epoch, before GPA."""

    priority = 'HIGHEST'

    def __init__(self):
        self.records = {}

    def after_train_epoch(self, runner):
        self.records[runner.epoch + 1] = {
            n: p.detach().clone()
            for n, p in runner.model.named_parameters() if p.requires_grad
        }


def make_runner(work_dir, name, mean=2.0, std=1.0, epochs=3, **kwargs):
    record = RecordHook()
    runner = SafeLoadingRunner(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=DataLoader(
            ToyData(), batch_size=4, shuffle=False,
            collate_fn=lambda b: dict(
                inputs=[s['inputs'] for s in b],
                targets=[s['targets'] for s in b])),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[
            record,
            dict(type='GaussianPromptAggregationHook', mean=mean, std=std)
        ],
        default_scope='mmpromptkd',
        log_level='WARNING',
        randomness=dict(seed=0),
        **kwargs)
    return runner, record


def weighted(records, weights, epochs):
    return {
        name: sum(weights[e - 1] * records[e][name] for e in epochs)
        for name in records[epochs[0]]
    }


class TestGaussianPromptAggregationHook:

    def test_weights_by_hand(self):
        hook = HOOKS.get('GaussianPromptAggregationHook')
        g = math.exp(-0.5)  # epochs 1 and 3 are one std from the mean 2
        assert hook.gaussian_weights(2.0, 1.0, 3) == pytest.approx(
            [g / (1 + 2 * g), 1 / (1 + 2 * g), g / (1 + 2 * g)])
        weights = hook.gaussian_weights(15.0, 1.0, 20)
        assert sum(weights) == pytest.approx(1.0)
        assert max(range(20), key=weights.__getitem__) == 14
        assert weights[13] == pytest.approx(weights[15])
        # A tiny std puts all the weight on the nearest epoch, no 0 / 0.
        assert hook.gaussian_weights(2.2, 1e-3, 3) == [0.0, 1.0, 0.0]
        with pytest.raises(ValueError, match='max_epochs must be >= 1'):
            hook.gaussian_weights(1.0, 1.0, 0)

    def test_bad_arguments(self):
        hook = HOOKS.get('GaussianPromptAggregationHook')
        for mean in (0.5, 21):
            with pytest.raises(ValueError, match=r'outside the epochs 1..20'):
                hook.gaussian_weights(mean, 1.0, 20)
        with pytest.raises(ValueError, match='std'):
            hook(mean=2.0, std=0.0)

    def test_runs_before_checkpoint_hook(self):
        hook = HOOKS.get('GaussianPromptAggregationHook')
        assert get_priority(hook.priority) < get_priority('VERY_LOW')

    def test_three_epochs(self, tmp_path):
        runner, record = make_runner(tmp_path / 'a', 'gpa_a')
        runner.train()
        g = math.exp(-0.5)
        weights = [g / (1 + 2 * g), 1 / (1 + 2 * g), g / (1 + 2 * g)]
        expected = weighted(record.records, weights, [1, 2, 3])
        # The parameters moved between epochs, so the check has teeth.
        assert not torch.allclose(record.records[1]['prompt'],
                                  record.records[3]['prompt'])
        params = dict(runner.model.named_parameters())
        for name, value in expected.items():
            torch.testing.assert_close(params[name].detach(), value)
        # The last checkpoint holds the aggregate, the others the running
        # sums; the frozen parameter is untouched.
        last = load_checkpoint_file(osp.join(runner.work_dir, 'epoch_3.pth'))
        for name, value in expected.items():
            torch.testing.assert_close(last['state_dict'][name], value)
        second = load_checkpoint_file(
            osp.join(runner.work_dir, 'epoch_2.pth'))[KEY]
        assert second['epochs'] == [1, 2]
        assert (second['mean'], second['std'], second['max_epochs']) == \
            (2.0, 1.0, 3)
        partial = weighted(record.records, weights, [1, 2])
        assert set(second['aggregate']) == {'prompt', 'proj.weight',
                                            'proj.bias'}
        for name, value in partial.items():
            torch.testing.assert_close(second['aggregate'][name], value)

    def test_resume_keeps_the_aggregate(self, tmp_path):
        runner, record = make_runner(tmp_path / 'a', 'gpa_b')
        runner.train()
        ckpt = osp.join(runner.work_dir, 'epoch_2.pth')
        resumed, record2 = make_runner(
            tmp_path / 'b', 'gpa_c', load_from=ckpt, resume=True)
        resumed.train()
        assert list(record2.records) == [3]
        hook = HOOKS.get('GaussianPromptAggregationHook')
        weights = hook.gaussian_weights(2.0, 1.0, 3)
        records = {1: record.records[1], 2: record.records[2],
                   3: record2.records[3]}
        expected = weighted(records, weights, [1, 2, 3])
        params = dict(resumed.model.named_parameters())
        for name, value in expected.items():
            torch.testing.assert_close(params[name].detach(), value)

    def test_resume_needs_matching_state(self, tmp_path):
        runner, _ = make_runner(tmp_path / 'a', 'gpa_d')
        runner.train()
        ckpt = osp.join(runner.work_dir, 'epoch_2.pth')
        other, _ = make_runner(
            tmp_path / 'b', 'gpa_e', mean=2.5, load_from=ckpt, resume=True)
        with pytest.raises(ValueError, match='must match to resume'):
            other.train()
        state = load_checkpoint_file(ckpt)
        del state[KEY]
        bare = str(tmp_path / 'bare.pth')
        torch.save(state, bare)
        other, _ = make_runner(
            tmp_path / 'c', 'gpa_f', load_from=bare, resume=True)
        with pytest.raises(RuntimeError, match='no Gaussian prompt'):
            other.train()

    def test_mean_outside_the_schedule(self, tmp_path):
        runner, _ = make_runner(tmp_path, 'gpa_g', mean=15.0)
        with pytest.raises(ValueError, match=r'mean=15.0 is outside'):
            runner.train()
