"""Tests of the feature projector and its globally synchronised BN."""
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

import mmpromptkd  # noqa: F401  (registers the components)
from mmpromptkd.models.necks import projector as projector_module
from mmpromptkd.registry import MODELS

GLOBAL_BATCH = 8
RANK_ROWS = [(0, 5), (5, 8)]  # uneven local batches on purpose
IN_CH, HIDDEN, OUT_CH = 6, 5, 4


def _build(**kwargs):
    cfg = dict(type='FeatureProjector', in_channels=IN_CH,
               out_channels=OUT_CH, hidden_channels=HIDDEN)
    cfg.update(kwargs)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _data(step: int):
    gen = torch.Generator().manual_seed(100 + step)
    x = torch.randn(GLOBAL_BATCH, IN_CH, generator=gen) * 2 + 1
    upstream = torch.randn(GLOBAL_BATCH, OUT_CH, generator=gen)
    return x, upstream


def _plain_bn_copy(bn: nn.BatchNorm1d) -> nn.BatchNorm1d:
    ref = nn.BatchNorm1d(bn.num_features, eps=bn.eps, momentum=bn.momentum)
    ref.load_state_dict(bn.state_dict())
    return ref


class TestFeatureProjector:

    def test_structure_and_names(self):
        model = _build()
        assert isinstance(model.fc1, nn.Linear)
        assert isinstance(model.bn, nn.BatchNorm1d)
        assert isinstance(model.fc2, nn.Linear)
        assert (model.fc1.in_features, model.fc1.out_features) == (IN_CH,
                                                                   HIDDEN)
        assert (model.fc2.in_features, model.fc2.out_features) == (HIDDEN,
                                                                   OUT_CH)
        assert model.sync_stats is True
        assert set(model.state_dict()) == {
            'fc1.weight', 'fc1.bias', 'bn.weight', 'bn.bias',
            'bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked',
            'fc2.weight', 'fc2.bias'
        }
        out = model(torch.randn(3, IN_CH))
        assert out.shape == (3, OUT_CH)

    def test_hidden_defaults_to_out(self):
        model = MODELS.build(
            dict(type='FeatureProjector', in_channels=3, out_channels=7))
        assert model.fc1.out_features == 7
        assert model.bn.num_features == 7

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match='in_channels'):
            MODELS.build(
                dict(type='FeatureProjector', in_channels=0, out_channels=2))
        model = _build()
        with pytest.raises(ValueError, match=f'\\(B, {IN_CH}\\)'):
            model(torch.randn(2, IN_CH + 1))

    def test_matches_hand_written_mlp(self):
        model = _build()
        x, _ = _data(0)
        ref_bn = _plain_bn_copy(model.bn)
        expected = model.fc2(torch.relu(ref_bn(model.fc1(x))))
        torch.testing.assert_close(model(x), expected)

    @pytest.mark.parametrize('sync_stats', [True, False])
    @pytest.mark.parametrize('momentum', [0.1, None])
    def test_single_process_equals_batchnorm1d(self, sync_stats, momentum):
        model = _build(sync_stats=sync_stats, bn_momentum=momentum)
        with torch.no_grad():  # non-trivial affine parameters
            model.bn.weight.uniform_(0.5, 1.5)
            model.bn.bias.uniform_(-0.5, 0.5)
        ref = _plain_bn_copy(model.bn)
        for step in range(3):
            x, _ = _data(step)
            h = model.fc1(x).detach()
            h1 = h.clone().requires_grad_()
            h2 = h.clone().requires_grad_()
            out, ref_out = model.bn(h1), ref(h2)
            torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=0)
            g = torch.randn_like(out)
            out.backward(g)
            ref_out.backward(g)
            torch.testing.assert_close(h1.grad, h2.grad, atol=1e-6, rtol=0)
        for name in ('running_mean', 'running_var', 'num_batches_tracked'):
            torch.testing.assert_close(
                getattr(model.bn, name), getattr(ref, name), atol=1e-6,
                rtol=0)
        model.eval()
        ref.eval()
        x, _ = _data(9)
        h = model.fc1(x)
        torch.testing.assert_close(model.bn(h), ref(h), atol=1e-6, rtol=0)

    @pytest.mark.parametrize('momentum', [0.1, None])
    def test_global_path_maths_with_one_process(self, monkeypatch, momentum):
        # Pretend to be distributed with a no-op all-reduce: the global
        # branch then sees only the local batch and must reproduce
        # nn.BatchNorm1d exactly (values, gradients, running stats).
        monkeypatch.setattr(projector_module, '_dist_world_size', lambda: 2)
        monkeypatch.setattr(projector_module.dist, 'all_reduce',
                            lambda tensor, op=None: None)
        model = _build(bn_momentum=momentum)
        with torch.no_grad():
            model.bn.weight.uniform_(0.5, 1.5)
            model.bn.bias.uniform_(-0.5, 0.5)
        ref = _plain_bn_copy(model.bn)
        for step in range(3):
            x, _ = _data(step)
            h = model.fc1(x).detach()
            h1 = h.clone().requires_grad_()
            h2 = h.clone().requires_grad_()
            out, ref_out = model.bn(h1), ref(h2)
            torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)
            g = torch.randn_like(out)
            out.backward(g)
            ref_out.backward(g)
            torch.testing.assert_close(h1.grad, h2.grad, atol=1e-5, rtol=0)
        torch.testing.assert_close(
            model.bn.weight.grad, ref.weight.grad, atol=1e-5, rtol=0)
        torch.testing.assert_close(
            model.bn.bias.grad, ref.bias.grad, atol=1e-5, rtol=0)
        for name in ('running_mean', 'running_var', 'num_batches_tracked'):
            torch.testing.assert_close(
                getattr(model.bn, name), getattr(ref, name), atol=1e-6,
                rtol=1e-6)

    def test_global_path_rejects_single_value(self, monkeypatch):
        monkeypatch.setattr(projector_module, '_dist_world_size', lambda: 2)
        monkeypatch.setattr(projector_module.dist, 'all_reduce',
                            lambda tensor, op=None: None)
        model = _build()
        with pytest.raises(ValueError, match='more than 1 value'):
            model(torch.randn(1, IN_CH))

    def test_global_path_refuses_what_batchnorm1d_refuses(self, monkeypatch):
        monkeypatch.setattr(projector_module, '_dist_world_size', lambda: 2)
        bn = projector_module._GlobalBatchNorm1d(4)
        for shape in ((4, ), (2, 4, 3, 3)):
            with pytest.raises(ValueError, match='expected 2D or 3D input'):
                nn.BatchNorm1d(4)(torch.randn(shape))
            with pytest.raises(ValueError, match='expected 2D or 3D input'):
                bn(torch.randn(shape))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _two_step_run(model, rows, steps=2):
    """Train-mode forward/backward on ``rows`` of each step's batch."""
    outs, in_grads = [], []
    for step in range(steps):
        x, upstream = _data(step)
        start, end = rows
        xs = x[start:end].clone().requires_grad_()
        out = model(xs)
        (out * upstream[start:end]).sum().backward()
        outs.append(out.detach())
        in_grads.append(xs.grad)
    return outs, in_grads


def _worker(rank: int, world_size: int, port: int, result_file: str) -> None:
    dist.init_process_group(
        'gloo',
        init_method=f'tcp://127.0.0.1:{port}',
        rank=rank,
        world_size=world_size)
    try:
        torch.set_num_threads(1)
        model = _build(sync_stats=True)
        outs, in_grads = _two_step_run(model, RANK_ROWS[rank])
        # The gradient of the summed loss w.r.t. shared parameters is the
        # sum of the per-process gradients.
        param_grads = {}
        for name, p in model.named_parameters():
            dist.all_reduce(p.grad)
            param_grads[name] = p.grad
        torch.save(
            dict(
                outs=outs,
                in_grads=in_grads,
                param_grads=param_grads,
                buffers={k: v for k, v in model.named_buffers()}),
            f'{result_file}.{rank}')
    finally:
        dist.destroy_process_group()


class TestSyncedStatsTwoProcesses:

    @pytest.mark.slow
    def test_two_processes_equal_one_process(self, tmp_path):
        result_file = str(tmp_path / 'result')
        mp.spawn(
            _worker, args=(2, _free_port(), result_file), nprocs=2,
            join=True)

        ref = _build(sync_stats=True)  # single process: plain BN
        ref_outs, ref_in_grads = _two_step_run(ref, (0, GLOBAL_BATCH))
        results = [torch.load(f'{result_file}.{r}') for r in range(2)]

        for step in range(2):
            out = torch.cat([r['outs'][step] for r in results])
            grad = torch.cat([r['in_grads'][step] for r in results])
            torch.testing.assert_close(out, ref_outs[step], atol=1e-5,
                                       rtol=0)
            torch.testing.assert_close(grad, ref_in_grads[step], atol=1e-5,
                                       rtol=0)
        for name, p in ref.named_parameters():
            for r in results:
                torch.testing.assert_close(
                    r['param_grads'][name], p.grad, atol=1e-5, rtol=0)
        for name, buf in ref.named_buffers():
            for r in results:
                torch.testing.assert_close(
                    r['buffers'][name], buf, atol=1e-5, rtol=0)
