"""Smoke test of ``python -m benchmarks unlabeled_images_study``."""
import json
import re

import pytest

from benchmarks import unlabeled_images_study as script


@pytest.mark.slow
def test_micro_study(tmp_path, capsys, weights_args):
    markdown, png = tmp_path / 'study.md', tmp_path / 'study.png'
    work = tmp_path / 'w'
    argv = [
        '--work-dir', str(work), '--seeds', '1', '--sizes', '0.5', '1', '2',
        '--num-classes', '6', '--train-per-class', '4', '--val-per-class',
        '1', '--test-per-class', '2', '--shots', '4', '--teacher-epochs',
        '1', '--student-epochs', '1', '--out-markdown', str(markdown),
        '--out-png', str(png), '--out-json', str(tmp_path / 'r.json'),
        '--cfg-options', 'train_dataloader.batch_size=4', *weights_args
    ]
    script.main(argv)
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith('| 1')
            or line.startswith('| 2x')]
    assert [r.split(' | ')[:2] for r in rows] == [['| 1/2', '12'],
                                                  ['| 1', '24'],
                                                  ['| 2x', '48']]
    for row in rows:
        for cell in row.strip('|').split('|')[2:]:
            mean = float(cell.split('±')[0])
            assert 0 <= mean <= 100
    assert re.search(r'HM (grows|falls|does not change)', out)
    assert markdown.read_text().count('\n| ') == 4  # header + 3 sizes
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert set(json.loads((tmp_path / 'r.json').read_text())) == {
        '0.5', '1', '2'
    }
    # The runs trained on what the sizes say: the half split is nested in
    # the whole one, 2x adds 4 generated images per class.
    config = (work / 'seed1' / 'images_2' / 'config.py').read_text()
    assert "type='ConcatDataset'" in config
    assert 'file_list=' in config and 'first_1x.txt' in config
    assert len((work / 'extra_1x' / 'first_1x.txt').read_text().split()) \
        == 24
    half = (work / 'seed1' / 'images_0.5' / 'config.py').read_text()
    assert "type='NestedSubset'" in half and 'fraction=0.5' in half
    # A second call resumes from the results.
    script.main(argv)
    assert out.count('train:') == 4  # teacher + 3 sizes, once each
    assert 'done, skipped' in capsys.readouterr().out
