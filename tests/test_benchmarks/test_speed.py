"""Smoke test of ``python -m benchmarks speed`` (smallest settings)."""
import json
import math

import pytest
import torch

from benchmarks import speed as bench
from benchmarks import teacher_text_release


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and \
        value > 0


def _timing_ok(stats: dict) -> bool:
    return all(_positive(stats[k]) for k in ('median_ms', 'min_ms', 'max_ms'))


@pytest.fixture
def figures(tmp_path):
    out = tmp_path / 'figures.json'
    threads = torch.get_num_threads()
    try:  # the study sets the thread count (--threads)
        returned = bench.main([
            '--device', 'cpu', '--arch', 'tiny', '--flops-arch', 'tiny',
            '--iters', '2', '--warmup', '1', '--classes', '10',
            '--batch-size', '2', '--num-images', '2', '--workers', '0',
            '--threads', '1', '--out', str(out)
        ])
    finally:
        torch.set_num_threads(threads)
    with open(out) as f:
        written = json.load(f)
    assert written.keys() == returned.keys()
    return written


class SectionChecks:
    """What each section must report (one run feeds them all)."""

    def check_all_sections_ran(self, figures):
        assert figures['environment']['sections'] == list(bench.SECTIONS)
        for section in bench.SECTIONS:
            assert section in figures
            assert figures['section_s'][section] >= 0

    def check_train_step(self, figures):
        fig = figures['train_step']['10']
        for mode in ('stored', 'recompute'):
            assert _timing_ok(fig[mode])
            assert _positive(fig[mode]['img_s'])
            assert math.isfinite(fig[mode]['loss'])
        assert _positive(fig['speedup'])
        assert _positive(fig['store_once_ms'])

    def check_overhead(self, figures):
        fig = figures['overhead']
        assert _timing_ok(fig['bare']) and _timing_ok(fig['runner'])
        assert fig['bare']['n'] == fig['runner']['n'] == 2
        assert math.isfinite(fig['overhead_pct'])

    def check_inference(self, figures):
        fig = figures['inference']
        assert _positive(fig['student']['img_s'])
        assert _positive(fig['teacher']['img_s'])
        assert _positive(fig['speedup'])
        # The exported student predicts exactly like the distiller.
        assert fig['max_abs_diff_vs_distiller'] < 1e-5
        # Our DataSamples hold what mmpretrain's setters make.
        assert fig['predictions']['same_samples'] is True
        assert _timing_ok(fig['predictions']['ours'])

    def check_data(self, figures):
        fig = figures['data']
        assert _positive(fig['pipeline_img_s'])
        assert _positive(fig['step_img_s'])
        assert fig['workers_needed'] >= 1
        assert fig['output_shape'] == [3, 224, 224]

    def check_memory(self, figures):
        fig = figures['memory']
        assert 'CPU proxy' in fig['measure']
        for mode in ('plain', 'checkpointing'):
            assert _positive(fig[mode]['saved_bytes'])
            assert _timing_ok(fig[mode]['step'])

    def check_precision(self, figures):
        fig = figures['precision']
        assert set(fig) == {
            'fp32', 'bf16 autocast', 'bf16 autocast, bf16 teacher'
        }
        assert fig['fp32']['max_abs_diff_student_logits'] == 0
        for variant in fig.values():
            assert _timing_ok(variant['step'])
            assert _positive(variant['speedup_vs_fp32'])
            for key in ('max_abs_diff_student_logits',
                        'max_abs_diff_teacher_logits', 'loss_rel_diff'):
                assert math.isfinite(variant[key]) and variant[key] >= 0

    def check_roofline(self, figures):
        fig = figures['roofline']
        assert _positive(fig['peak_tflops'])
        counts = fig['archs']['tiny']
        for key in ('teacher_forward', 'student_forward_backward',
                    'student_inference', 'text_per_class',
                    'text_per_class_to_eot'):
            assert _positive(counts[key])
        bounds = counts['bounds']['10']
        assert all(_positive(v) for v in bounds.values())
        for value in fig['measured'].values():
            assert _positive(value['achieved_tflops'])

    def check_ideas(self, figures):
        fig = figures['ideas']
        eot = fig['text_to_eot']['10']
        assert _positive(eot['speedup'])
        assert eot['tokens'] < eot['context_length']
        # Running the text tower to the end token only changes nothing.
        assert eot['max_abs_diff'] < 1e-4
        for key in ('channels_last', 'sdpa_math'):
            assert _positive(fig[key]['speedup'])

    def check_onnx(self, figures):
        fig = figures['onnx']
        pytest.importorskip('onnxruntime')
        for name in ('onnxruntime', 'eager', 'teacher'):
            assert _timing_ok(fig[name]) and _positive(fig[name]['img_s'])
        assert fig['max_abs_logit_diff'] < 1e-4
        assert _positive(fig['onnxruntime_vs_teacher'])

    def check_sources(self, figures):
        fig = figures['sources']
        for key in ('shards_img_s', 'folder_img_s', 'step_img_s',
                    'shards_vs_folder', 'shards_vs_step', 'count_images_s'):
            assert _positive(fig[key]), key

    def check_teacher_cache(self, figures):
        fig = figures['teacher_cache']['10']
        for name in ('online', 'cached', 'teacher_forward'):
            assert _timing_ok(fig[name]), name
        # The same logits give the same loss, to float rounding.
        assert fig['loss_rel_difference'] < 1e-5
        sizes = fig['bytes_per_view']
        # crop (16) + flip (1) + 10 logits of 4 / 2 bytes, or 9 kept of 8.
        assert sizes == {'float32': 57, 'float16': 37, 'topk': 93}

    def check_compile(self, figures):
        fig = figures['compile']
        for name in ('eager', 'compiled'):
            assert _timing_ok(fig[name]), name
        assert _positive(fig['compile_s'])
        assert fig['max_abs_logit_diff'] < 1e-4


@pytest.mark.slow
def test_every_section_reports_its_figures(figures):
    checks = SectionChecks()
    names = sorted(n for n in dir(checks) if n.startswith('check_'))
    assert len(names) == 13
    for name in names:
        getattr(checks, name)(figures)


def test_sections_by_number_and_defaults():
    args = bench.parse_args(['--sections', '7,1', '--device', 'cpu'])
    assert args.sections == ['train_step', 'roofline']
    assert args.arch == 'tiny'
    assert args.peak_tflops == bench.DEFAULT_PEAK_TFLOPS


def test_bad_section():
    with pytest.raises(SystemExit):
        bench.parse_args(['--sections', 'speed'])


@pytest.mark.slow
def test_teacher_text_release_script(capsys):
    figures = teacher_text_release.main(
        ['--arch', 'tiny', '--steps', '1', '--classes', '4'])
    assert figures['kept']['released_params'] == 0
    assert figures['released']['released_params'] > 0
    assert figures['cached']['released_params'] == 0  # none built
    for run in figures.values():
        assert run['peak_mib'] >= run['rss_mib'] > 0
    out = capsys.readouterr().out
    assert 'resident memory' in out and 'without the teacher' in out
