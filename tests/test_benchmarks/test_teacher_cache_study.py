"""Smoke test of ``python -m benchmarks teacher_cache_study`` (micro scale)."""
import json

import pytest

from benchmarks import teacher_cache_study as script


@pytest.mark.slow
def test_micro_study(tmp_path, weights_args):
    markdown, work = tmp_path / 'study.md', tmp_path / 'w'
    argv = [
        '--work-dir', str(work), '--seeds', '1', '2', '--num-classes', '6',
        '--train-per-class', '4', '--val-per-class', '1', '--test-per-class',
        '2', '--shots', '4', '--teacher-epochs', '1', '--student-epochs',
        '2', '--topk', '3', '--out-markdown', str(markdown), '--out-json',
        str(tmp_path / 'r.json'), '--cfg-options',
        'train_dataloader.batch_size=4', *weights_args
    ]
    script.main(argv)
    results = json.loads((tmp_path / 'r.json').read_text())
    assert set(results) == {
        'online', 'cache_float32', 'cache_top3', 'cache_float16_recorded',
        'cache_float16_random'
    }
    assert set(results['online']) == {'1', '2'}
    assert set(results['cache_float32']) == {'1'}
    # The float32 cache replays the online run of its seed: the same test.
    for metric in ('base', 'novel', 'hm'):
        assert results['cache_float32']['1'][metric] == \
            results['online']['1'][metric]
    # One cache per storage, recorded once, over the 2 epochs.
    meta = json.loads((work / 'caches' / 'topk' / 'meta.json').read_text())
    assert (meta['num_views'], meta['topk'], meta['seed']) == (2, 3, 1)
    config = (work / 'seed2' / 'cache_float16_random' / 'config.py')
    assert "views='random'" in config.read_text()
    assert 'teacher=None' in config.read_text()
    table = markdown.read_text()
    assert table.count('\n| ') == 6  # header + 5 rows
    assert '| online (teacher at every step) | 1, 2 |' in table
