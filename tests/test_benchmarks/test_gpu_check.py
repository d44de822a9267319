"""``python -m benchmarks gpu_check``, run on the CPU at the smallest size."""
import json

import pytest
import torch

from benchmarks import gpu_check as module


@pytest.mark.slow
def test_cpu_smoke_run(tmp_path, capsys):
    threads = torch.get_num_threads()
    out = tmp_path / 'gpu.json'
    try:
        status = module.main([
            '--device', 'cpu', '--arch', 'tiny', '--batch-size', '4',
            '--steps', '3', '--warmup', '1', '--classes', '10', '--out',
            str(out)
        ])
    finally:
        torch.set_num_threads(threads)
    figures = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert status == 0 and figures['passed'], printed
    for precision in ('fp32', 'bf16', 'fp16'):
        fig = figures[precision]
        assert len(fig['losses']) == 3
        assert fig['img_s'] > 0 and fig['tflops'] > 0
        assert fig['max_rel_loss_diff'] <= figures['tolerance']
    assert figures['fp32']['max_rel_loss_diff'] == 0
    assert 'every precision tracks fp32' in printed


def test_a_loss_off_the_tolerance_fails(tmp_path, monkeypatch):
    args = module.parse_args(['--device', 'cpu', '--steps', '4'])
    assert (args.batch_size, args.arch, args.tolerance) == (256, 'real',
                                                            0.05)
    with pytest.raises(SystemExit):
        module.parse_args(['--steps', '3', '--warmup', '3'])
