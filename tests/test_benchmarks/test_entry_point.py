"""``python -m benchmarks``: one entry point for every study."""
import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

import benchmarks
from benchmarks.__main__ import STUDIES, main


def test_every_study_module_is_listed():
    found = {
        m.name
        for m in pkgutil.iter_modules([str(Path(benchmarks.__file__).parent)])
        if not m.ispkg and m.name not in ('__main__', 'common')
    }
    assert found == set(STUDIES)


def test_no_name_lists_the_studies(capsys):
    assert main([]) == 2
    assert main(['--help']) == 0
    out = capsys.readouterr().out
    for name in STUDIES:
        doc = importlib.import_module(f'benchmarks.{name}').__doc__
        assert f'{name}' in out and doc.strip().splitlines()[0] in out


def test_an_unknown_name_is_an_error(capsys):
    assert main(['benchmark_promptkd']) == 2
    assert "unknown study 'benchmark_promptkd'" in capsys.readouterr().err


def test_the_arguments_reach_the_study(monkeypatch):
    from benchmarks import checkpoint_size
    seen = []

    def study():
        seen.append(list(sys.argv))
        return 3

    monkeypatch.setattr(checkpoint_size, 'main', study)
    before = list(sys.argv)
    assert main(['checkpoint_size', '--arch', 'tiny']) == 3
    assert seen == [['python -m benchmarks checkpoint_size', '--arch', 'tiny']]
    assert sys.argv == before


@pytest.mark.parametrize('name', STUDIES)
def test_each_study_parses_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, '--help'])
    assert exit_info.value.code == 0
    assert f'python -m benchmarks {name}' in capsys.readouterr().out
