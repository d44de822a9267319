"""Tests of tools/analysis/aggregate_results.py."""
import csv
import io
import json

import pytest
from tool_scripts import load_tool

agg = load_tool('analysis/aggregate_results.py')

# dtd: three seeds with explicit HM values; eurosat: one seed, bare keys and
# no HM (computed from base and novel: 2 * 90 * 70 / 160 = 78.75).
RESULTS = {
    'dtd/seed1': {'b2n/base': 80.0, 'b2n/novel': 60.0, 'b2n/hm': 70.0,
                  'b2n/all': 1.0},
    'dtd/seed2': {'b2n/base': 82.0, 'b2n/novel': 62.0, 'b2n/hm': 71.0},
    'dtd/seed3': {'b2n/base': 84.0, 'b2n/novel': 61.0, 'b2n/hm': 72.0},
    'eurosat/seed1': {'base': 90.0, 'novel': 70.0, 'note': 'text ignored'},
}


@pytest.fixture
def result_dir(tmp_path):
    for sub, metrics in RESULTS.items():
        path = tmp_path / 'work_dirs' / sub / 'metrics.json'
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(metrics))
    return tmp_path / 'work_dirs'


def _rows(result_dir):
    paths = agg.expand_paths([str(result_dir / '*' / 'seed*' / '*.json')])
    return agg.summarise(agg.group_results(paths))


class TestAggregateResults:

    def test_group_results(self, result_dir):
        paths = agg.expand_paths([str(result_dir / '**' / 'metrics.json')])
        assert len(paths) == 4
        groups = agg.group_results(paths)
        assert list(groups) == ['dtd', 'eurosat']
        assert sorted(groups['dtd']) == [1, 2, 3]
        assert groups['dtd'][2] == dict(base=82.0, novel=62.0, hm=71.0)
        assert groups['eurosat'][1]['hm'] == pytest.approx(78.75)

    def test_summary_values(self, result_dir):
        dtd, eurosat, average = _rows(result_dir)
        assert (dtd.name, dtd.num_seeds) == ('dtd', 3)
        # base 80, 82, 84: mean 82, sample std 2; novel 60, 62, 61: mean 61,
        # std 1; HM 70, 71, 72: mean 71, std 1.
        assert dtd.base == pytest.approx(82.0)
        assert dtd.base_std == pytest.approx(2.0)
        assert dtd.novel == pytest.approx(61.0)
        assert dtd.novel_std == pytest.approx(1.0)
        assert dtd.hm == pytest.approx(71.0)
        assert dtd.hm_std == pytest.approx(1.0)
        assert dtd.hm_of_means == pytest.approx(2 * 82 * 61 / 143)
        # one seed: std 0
        assert (eurosat.base, eurosat.novel) == (90.0, 70.0)
        assert eurosat.base_std == eurosat.novel_std == eurosat.hm_std == 0
        assert eurosat.hm == pytest.approx(78.75)
        # Average: mean of dataset means, HM of those means.
        assert average.name == 'Average' and average.num_seeds is None
        assert average.base == pytest.approx(86.0)
        assert average.novel == pytest.approx(65.5)
        assert average.hm == pytest.approx((71.0 + 78.75) / 2)
        assert average.hm_of_means == pytest.approx(2 * 86 * 65.5 / 151.5)
        assert average.base_std is None

    def test_formats(self, result_dir):
        rows = _rows(result_dir)
        table = agg.format_rows(rows, 'table')
        assert 'dtd' in table and '82.00 ± 2.00' in table
        assert '90.00 ± 0.00' in table
        last = table.strip().splitlines()[-1].split()
        assert last == ['Average', '-', '86.00', '65.50', '74.88', '74.36']

        markdown = agg.format_rows(rows, 'markdown').splitlines()
        assert markdown[0] == '| Dataset | Seeds | Base | Novel | HM | ' \
            'HM(means) |'
        assert markdown[2].startswith('| dtd | 3 | 82.00 ± 2.00 | '
                                      '61.00 ± 1.00 | 71.00 ± 1.00 |')
        assert markdown[-1] == '| Average | - | 86.00 | 65.50 | 74.88 | ' \
            '74.36 |'

        records = list(csv.DictReader(io.StringIO(
            agg.format_rows(rows, 'csv'))))
        assert [r['dataset'] for r in records] == ['dtd', 'eurosat',
                                                   'Average']
        assert float(records[0]['base_std']) == pytest.approx(2.0)
        assert float(records[1]['hm']) == pytest.approx(78.75)
        assert records[2]['base_std'] == '' and records[2]['num_seeds'] == ''
        assert float(records[2]['hm_of_means']) == pytest.approx(
            2 * 86 * 65.5 / 151.5, abs=1e-4)

        with pytest.raises(ValueError, match='fmt'):
            agg.format_rows(rows, 'html')

    def test_main(self, result_dir, capsys):
        code = agg.main(
            [str(result_dir / 'dtd' / 'seed*' / '*.json'), '--format', 'csv'])
        assert code == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith('dataset,num_seeds,base')
        assert out[1].startswith('dtd,3,82.0000,2.0000,61.0000,1.0000')
        assert agg.main([str(result_dir / 'missing*.json')]) == 1
        assert 'No result file' in capsys.readouterr().err

    def test_custom_pattern_and_prefix(self, tmp_path):
        path = tmp_path / 'run_caltech_s7.json'
        path.write_text(json.dumps({'val/base': 90.0, 'val/novel': 60.0}))
        groups = agg.group_results(
            [str(path)], pattern=r'run_(?P<dataset>\w+?)_s(?P<seed>\d+)',
            prefix='val')
        assert groups == {'caltech': {7: dict(base=90.0, novel=60.0,
                                              hm=72.0)}}

    def test_errors(self, result_dir, tmp_path):
        paths = agg.expand_paths([str(result_dir / '*' / 'seed*' / '*.json')])
        with pytest.raises(ValueError, match='named group "dataset"'):
            agg.group_results(paths, pattern=r'(?P<data>[^/]+)/seed\d+')
        with pytest.raises(ValueError, match='does not match'):
            agg.group_results(['x.json'])
        # Without a seed group, several files of a dataset are duplicates.
        with pytest.raises(ValueError, match='Two result files'):
            agg.group_results(paths, pattern=r'(?P<dataset>[^/]+)/seed\d+')
        copy = result_dir / 'dtd' / 'seed1' / 'copy.json'
        copy.write_text(json.dumps(RESULTS['dtd/seed1']))
        with pytest.raises(ValueError, match='Two result files'):
            agg.group_results(paths + [str(copy)])
        bad = result_dir / 'dtd' / 'seed9' / 'metrics.json'
        bad.parent.mkdir()
        bad.write_text(json.dumps({'b2n/all': 50.0}))
        with pytest.raises(ValueError, match='lacks base/novel'):
            agg.group_results([str(bad)])
        bad.write_text('[1, 2]')
        with pytest.raises(ValueError, match='JSON object'):
            agg.group_results([str(bad)])
        bad.write_text('{not json')
        with pytest.raises(ValueError, match='not a JSON file'):
            agg.group_results([str(bad)])


def test_results_without_seed(tmp_path, capsys):
    # The demo's layout: one run per folder, no seed folder.
    for name, (base, novel) in (('teacher', (83.0, 77.8)),
                                ('student', (74.4, 73.3))):
        (tmp_path / name).mkdir()
        (tmp_path / name / 'results.json').write_text(
            json.dumps({'b2n/base': base, 'b2n/novel': novel}))
    files = sorted(str(p) for p in tmp_path.glob('*/results.json'))
    groups = agg.group_results(files)
    assert groups['student'] == {None: dict(
        base=74.4, novel=73.3, hm=agg.harmonic_mean(74.4, 73.3))}
    assert list(groups) == ['student', 'teacher']
    agg.main([str(tmp_path / '*' / 'results.json')])
    out = capsys.readouterr().out
    assert 'student' in out and 'teacher' in out and 'Average' in out
    # Mixed with a seeded file of the same dataset: an error.
    (tmp_path / 'student' / 'seed1').mkdir()
    (tmp_path / 'student' / 'seed1' / 'results.json').write_text(
        json.dumps({'b2n/base': 1.0, 'b2n/novel': 1.0}))
    with pytest.raises(ValueError, match='with and without a seed'):
        agg.group_results(
            files + [str(tmp_path / 'student' / 'seed1' / 'results.json')])
