"""DasslCosineAnnealingLR: Dassl's period, following the training length."""
import json
import math
import subprocess
import sys
import textwrap

import pytest
import torch

import mmpromptkd  # noqa: F401
from mmpromptkd.engine.schedulers import DasslCosineAnnealingLR
from lr_schedules import dassl_lrs


def _optimizer(lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def _steps(scheduler, optimizer, count: int):
    lrs = []
    for _ in range(count):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    return lrs


def test_period_is_end_not_end_minus_begin():
    optimizer = _optimizer()
    scheduler = DasslCosineAnnealingLR(optimizer, begin=1, end=6, eta_min=0.)
    lrs = _steps(scheduler, optimizer, 6)
    # Step k >= 1: 0.05 * (1 + cos(pi * (k - 1) / 6)), by hand.
    expected = [0.1] + [
        0.05 * (1 + math.cos(math.pi * (k - 1) / 6)) for k in range(1, 6)
    ]
    assert lrs == pytest.approx(expected, rel=1e-12)


def test_explicit_t_max_wins():
    optimizer = _optimizer()
    scheduler = DasslCosineAnnealingLR(optimizer, T_max=4, begin=0, end=4)
    lrs = _steps(scheduler, optimizer, 4)
    assert lrs == pytest.approx(
        [0.05 * (1 + math.cos(math.pi * k / 4)) for k in range(4)],
        rel=1e-12)


def test_needs_a_length():
    with pytest.raises(ValueError, match='T_max or end'):
        DasslCosineAnnealingLR(_optimizer(), begin=1)


RUN = textwrap.dedent('''
    import json, sys
    import torch
    from mmengine.hooks import Hook
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    import mmpromptkd  # noqa: F401

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
        def forward(self, inputs, mode='tensor'):
            return dict(loss=(self.w - 1).pow(2).sum())

    class RecordHook(Hook):
        def __init__(self):
            self.lrs = []
        def before_train_epoch(self, runner):
            self.lrs.append(runner.optim_wrapper.get_lr()['lr'][0])

    def run(max_epochs):
        hook = RecordHook()
        Runner(
            model=Toy(), work_dir=sys.argv[1], default_scope='mmpromptkd',
            experiment_name=f'cosine_{max_epochs}',
            train_dataloader=dict(
                dataset=[dict(inputs=0)] * 4,
                batch_size=2,
                collate_fn=dict(type='default_collate'),
                sampler=dict(type='DefaultSampler', shuffle=False)),
            train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.005)),
            param_scheduler=[
                dict(type='ConstantLR', factor=1e-5 / 0.005, begin=0, end=2,
                     by_epoch=True),
                dict(type='DasslCosineAnnealingLR', eta_min=0.0, begin=1,
                     by_epoch=True),
            ],
            custom_hooks=[hook],
            default_hooks=dict(checkpoint=None, logger=None),
            log_level='WARNING').train()
        return hook.lrs

    print(json.dumps({n: run(n) for n in map(int, sys.argv[2:])}))
''')
EPOCHS = (1, 3, 7)


@pytest.fixture(scope='module')
def runner_lrs(tmp_path_factory):
    """The learning rate of every epoch, run by mmengine's Runner for each
    of EPOCHS (in one subprocess: the Runner sets the default scope)."""
    out = subprocess.run(
        [sys.executable, '-c', RUN,
         str(tmp_path_factory.mktemp('runs')), *map(str, EPOCHS)],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('max_epochs', EPOCHS)
def test_runner_ends_the_cosine_with_training(runner_lrs, max_epochs):
    """Without end / T_max, mmengine's Runner makes the schedule Dassl's
    for ``train_cfg.max_epochs`` epochs."""
    assert runner_lrs[str(max_epochs)] == pytest.approx(
        dassl_lrs(0.005, max_epochs), rel=1e-9, abs=1e-15)
