"""Smoke test of ``python -m benchmarks unlabeled_images_study``."""
import json
import re

import pytest

from benchmarks import unlabeled_images_study as script

MICRO = [
    '--seeds', '1', '--num-classes', '6', '--train-per-class', '4',
    '--val-per-class', '1', '--test-per-class', '2', '--shots', '4',
    '--teacher-epochs', '1', '--student-epochs', '2', '--cfg-options',
    'train_dataloader.batch_size=4'
]


@pytest.mark.slow
def test_micro_study(tmp_path, capsys, weights_args):
    markdown, png = tmp_path / 'study.md', tmp_path / 'study.png'
    work = tmp_path / 'w'
    argv = [
        '--work-dir', str(work), '--sizes', '1', '2', '--out-markdown',
        str(markdown), '--out-png', str(png), '--out-json',
        str(tmp_path / 'r.json'), *MICRO, *weights_args
    ]
    script.main(argv)
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r'\| (1|2x)', line)]
    # size, images, epochs, steps: 24 images are 6 batches of 4 an epoch;
    # the control run of 2x takes the steps of 1x in half the epochs.
    assert [r.split(' | ')[:4] for r in rows] == [
        ['| 1', '24', '2', '12'], ['| 2x', '48', '2', '24'],
        ['| 2x, steps of 1', '48', '1', '12']]
    for row in rows:
        for cell in row.strip('|').split('|')[4:]:
            mean = float(cell.split('±')[0])
            assert 0 <= mean <= 100
    assert re.search(r'HM (grows|falls|does not change).*At the steps of '
                     r'the 1x run: .*HM (grows|falls|does not change)', out)
    assert markdown.read_text().count('\n| ') == 4  # header + 3 runs
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    results = json.loads((tmp_path / 'r.json').read_text())
    assert set(results['epochs']) == {'1', '2'}
    assert set(results['steps']) == {'2'}
    assert results['schedule']['steps'] == {'2': [1, 12]}
    # The runs trained on what the sizes say: 2x adds 4 generated images
    # per class, and its control run trains 1 epoch.
    config = (work / 'seed1' / 'images_2' / 'config.py').read_text()
    assert "type='ConcatDataset'" in config
    assert 'file_list=' in config and 'first_1x.txt' in config
    assert len((work / 'extra_1x' / 'first_1x.txt').read_text().split()) \
        == 24
    control = (work / 'seed1' / 'images_2_steps' / 'config.py').read_text()
    assert 'max_epochs=1' in control
    # A second call resumes from the results.
    script.main(argv)
    assert out.count('train:') == 4  # teacher + 3 runs, once each
    assert 'done, skipped' in capsys.readouterr().out


def test_a_fraction_is_a_nested_subset(tmp_path):
    args = script.parse_args(['--work-dir', str(tmp_path), *MICRO])
    cfg = script.study_config(0.5, args, str(tmp_path / 'data'), None, 1,
                              str(tmp_path / 'teacher.pth'))
    dataset = cfg.train_dataloader.dataset
    assert (dataset.type, dataset.fraction, dataset.seed) == ('NestedSubset',
                                                              0.5, 1)
    assert script.schedule(0.5, args, cfg, control=False) == (2, 6)
    assert script.schedule(0.5, args, cfg, control=True) == (4, 12)
