"""Smoke test of ``python -m benchmarks synthetic_b2n``.

Runs the benchmark for real at a micro scale (6 classes, 1 seed, 1 epoch)
and checks that the table, the Markdown file and the chart come out with
accuracies in [0, 100], and that a second call resumes from the results.
"""
import re
from pathlib import Path

import pytest
from mmengine.config import Config

from benchmarks import synthetic_b2n as script
from benchmarks.b2n.rows import build_row_config

MODEL_CFG = (Path(__file__).resolve().parents[2] / 'configs' / '_base_' /
             'models' / 'promptkd_tiny-clip.py')

ROWS = ['student_zs', 'promptkd']


@pytest.mark.slow
def test_micro_benchmark(tmp_path, capsys, weights_args):
    markdown, png = tmp_path / 'b2n.md', tmp_path / 'b2n.png'
    readme = tmp_path / 'README.md'
    readme.write_text(f'# Title\n\n{script.README_BEGIN}\nold table\n'
                      f'{script.README_END}\n\nAfter.\n')
    argv = [
        '--work-dir', str(tmp_path / 'w'), '--seeds', '1', '--rows', *ROWS,
        '--num-classes', '6', '--train-per-class', '4', '--val-per-class',
        '1', '--test-per-class', '2', '--shots', '4', '--teacher-epochs',
        '1', '--student-epochs', '1', '--out-markdown', str(markdown),
        '--out-png', str(png), '--update-readme', str(readme),
        # 12 teacher images: the last partial batch is dropped, so batch 4.
        '--cfg-options', 'train_dataloader.batch_size=4', *weights_args
    ]
    script.main(argv)
    out = capsys.readouterr().out

    labels = [script.ROWS[k].label for k in ROWS]
    table_lines = [line for line in out.splitlines() if line.startswith('|')]
    assert len(table_lines) == 2 + len(ROWS)
    for label, line in zip(labels, table_lines[2:]):
        assert line.startswith(f'| {label} |')
        cells = re.findall(r'(-?\d+\.\d+) ± (-?\d+\.\d+)', line)
        assert len(cells) == 3
        for mean, std in cells:
            assert 0.0 <= float(mean) <= 100.0
            assert float(std) == 0.0  # one seed

    text = markdown.read_text()
    assert 'python -m benchmarks synthetic_b2n --work-dir' in text
    assert all(f'| {label} |' in text for label in labels)
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    updated = readme.read_text()
    assert 'old table' not in updated
    assert updated.startswith(f'# Title\n\n{script.README_BEGIN}\n')
    assert updated.endswith(f'{script.README_END}\n\nAfter.\n')
    assert all(f'| {label} |' in updated for label in labels)

    # Resumable: nothing is trained or tested again.
    script.main(argv)
    out = capsys.readouterr().out
    assert out.count('done, skipped') == len(ROWS)
    assert 'train:' not in out and 'test:' not in out


def test_ordering_margin_and_verdicts():
    # 2 * sqrt((3^2 + 4^2) / 3) = 2 * sqrt(25 / 3) = 5.7735...
    assert script.ordering_margin(3.0, 4.0, 3) == pytest.approx(5.773503)
    # Small stds: the test-set floor applies.
    assert script.ordering_margin(0.1, 0.0, 3) == script.MIN_MARGIN
    summary = [
        ('promptkd', dict(hm=(70.0, 1.0))),
        ('student_zs', dict(hm=(60.0, 0.0))),  # +10 > 2: yes
        ('feature_l1', dict(hm=(69.0, 1.0))),  # +1 < 2: within noise
        ('wo_shared_text', dict(hm=(75.0, 3.0))),  # -5 < -3.65: reversed
    ]
    lines = script.check_orderings(summary, num_seeds=3)
    verdicts = {line.split(' | ')[0][2:]: line.split(' | ')[-1][:-2]
                for line in lines[2:]}
    assert verdicts == {
        'distilled student > zero-shot student': 'yes',
        'logit KL > feature L1': 'within noise',
        "shared teacher text features > student's own text encoder":
        'no (reversed)',
    }
    # 2 * sqrt((1 + 9) / 3) = 3.6515
    assert '| -5.00 | 3.65 |' in lines[-1]


def test_update_readme_needs_markers(tmp_path):
    readme = tmp_path / 'README.md'
    readme.write_text('no markers here\n')
    with pytest.raises(ValueError, match='README.md: expected the markers'):
        script.update_readme(str(readme), '| table |', [])
    # Checked before anything runs.
    with pytest.raises(ValueError, match='README.md: expected the markers'):
        script.main(['--work-dir', str(tmp_path / 'w'), '--update-readme',
                     str(readme)])
    assert not (tmp_path / 'w').exists()
    assert readme.read_text() == 'no markers here\n'


def test_cross_family_rows_swap_one_model(tmp_path):
    args = script.parse_args(['--work-dir', str(tmp_path)])
    base = build_row_config('promptkd', args, 'data', 1, 'clip_a.pth')
    siglip = Config.fromfile(str(MODEL_CFG))['tiny_siglip_clip']
    student_clip = build_row_config('siglip_student', args, 'data', 1,
                                    'clip_a.pth').model
    teacher_clip = build_row_config('siglip_teacher', args, 'data', 1,
                                    'siglip_a.pth').model
    # CLIP teacher -> SigLIP-style student: only the student's CLIP changes.
    assert student_clip.student.clip.model_cfg == siglip
    assert student_clip.teacher == base.model.teacher
    assert student_clip.student.clip.checkpoint.endswith(
        'tiny_siglip_clip.pth')
    # SigLIP-style teacher (its stage-a checkpoint) -> CLIP student.
    assert teacher_clip.teacher.clip.model_cfg == siglip
    assert teacher_clip.teacher.checkpoint == 'siglip_a.pth'
    assert teacher_clip.student == base.model.student
    zero_shot = build_row_config('siglip_zs', args, 'data', 1).model
    assert zero_shot.clip.model_cfg == siglip
    # Run when asked for: the default rows are those of the main table.
    assert args.rows == [
        k for k in script.ROWS
        if not k.startswith('siglip') and not k.startswith('ensemble')
    ]


def test_each_distillation_row_gets_its_own_teacher(tmp_path, monkeypatch,
                                                    capsys):
    calls = []

    def fake_run_row(key, args, data, seed, teacher_ckpt=None,
                     evaluate=True):
        calls.append((key, seed, teacher_ckpt, evaluate))
        metrics = dict(base=1.0, novel=1.0, hm=1.0) if evaluate else None
        return metrics, f'{key}-{seed}.pth'

    monkeypatch.setattr(script, 'run_row', fake_run_row)
    monkeypatch.setattr(script, 'ensure_data', lambda args: 'data')
    args = script.parse_args([
        '--work-dir', str(tmp_path), '--seeds', '1', '--rows', 'promptkd',
        'siglip_teacher', 'siglip_promptsrc', 'siglip_student'
    ])
    results = script.run_benchmark(args)
    assert calls == [
        # Stage a first: the CLIP teacher only trained (not a row here).
        ('teacher_promptsrc', 1, None, False),
        ('siglip_promptsrc', 1, None, True),
        ('promptkd', 1, 'teacher_promptsrc-1.pth', True),
        ('siglip_teacher', 1, 'siglip_promptsrc-1.pth', True),
        ('siglip_student', 1, 'teacher_promptsrc-1.pth', True),
    ]
    assert list(results) == [
        'promptkd', 'siglip_teacher', 'siglip_promptsrc', 'siglip_student'
    ]
