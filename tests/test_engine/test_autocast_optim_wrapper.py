"""AutocastOptimWrapper: bf16 forward on CPU, fp32 master weights."""
import pytest
import torch
from mmengine.config import Config
from torch import nn

import mmpromptkd  # noqa: F401
from mmpromptkd.registry import OPTIM_WRAPPERS
from run_cli import enable_amp


def test_bf16_forward_fp32_weights():
    model = nn.Linear(4, 3)
    wrapper = OPTIM_WRAPPERS.build(
        dict(type='AutocastOptimWrapper', dtype='bfloat16',
             optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    x = torch.randn(5, 4)
    with wrapper.optim_context(model):
        out = model(x)
    assert out.dtype == torch.bfloat16
    expected = (x.bfloat16() @ model.weight.bfloat16().t() +
                model.bias.bfloat16())
    torch.testing.assert_close(out, expected)
    before = model.weight.detach().clone()
    wrapper.update_params(out.float().pow(2).mean())
    assert model.weight.dtype == torch.float32
    assert model.weight.grad is None or model.weight.grad.dtype == \
        torch.float32
    assert not torch.equal(model.weight, before)


def test_bad_dtype():
    with pytest.raises(ValueError, match='dtype'):
        OPTIM_WRAPPERS.build(
            dict(type='AutocastOptimWrapper', dtype='float8',
                 optimizer=torch.optim.SGD(nn.Linear(1, 1).parameters(),
                                           lr=0.1)))


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only choice')
def test_amp_flag_on_cpu_uses_bf16_autocast():
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1))))
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    cfg = Config(dict(optim_wrapper=dict(type='Other', optimizer=dict())))
    with pytest.raises(ValueError, match='Other'):
        enable_amp(cfg)
