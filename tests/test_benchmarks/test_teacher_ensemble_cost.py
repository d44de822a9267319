"""The teacher-ensemble cost benchmark runs and reports its figures."""
import json

from benchmarks import teacher_ensemble_cost


def test_the_cost_table_reports_time_and_memory_per_variant(tmp_path,
                                                            capsys):
    out = tmp_path / 'cost.json'
    teacher_ensemble_cost.main([
        '--arch', 'tiny', '--iters', '1', '--warmup', '0', '--classes', '5',
        '--batch-size', '2', '--threads', '1', '--out-json', str(out)])
    figures = json.loads(out.read_text())['figures']
    single = figures['single teacher']
    assert single['ratio'] == 1.0
    # Members of one architecture: memory grows with their number (the
    # zero-shot members have no prompts).
    for members in (2, 3):
        ratio = figures[f'ensemble of {members}']['teacher_mib'] / single[
            'teacher_mib']
        assert abs(ratio - members) < 0.05 * members, ratio
    assert 'ensemble of 3' in capsys.readouterr().out
