"""docs/open_clip_coverage.md is what the code builds, row by row."""
import open_clip
import pytest
import timm

from tool_runs import REPO
from tool_scripts import load_tool

COVERAGE = load_tool('analysis/open_clip_coverage.py')
PAGE = REPO / 'docs' / 'open_clip_coverage.md'


def _documented_rows() -> dict:
    rows = {}
    for line in PAGE.read_text().splitlines():
        cells = [c.strip() for c in line.strip('|').split('|')]
        if line.startswith('|') and len(cells) == len(COVERAGE.COLUMNS) \
                and cells[0] not in ('model', '---'):
            rows[cells[0]] = dict(zip(COVERAGE.COLUMNS, cells))
    return rows


DOCUMENTED = _documented_rows()


def test_every_open_clip_model_has_a_row():
    assert sorted(DOCUMENTED) == sorted(open_clip.list_models())
    assert f'open_clip {open_clip.__version__}' in PAGE.read_text()


@pytest.mark.parametrize('name', open_clip.list_models())
def test_row_is_what_the_code_builds(name):
    """Built again (scaled down, random weights): the same tower, prompt
    support, roles, and depth-0 parity with open_clip."""
    assert COVERAGE.coverage_row(name) == DOCUMENTED[name]


def test_the_families_of_the_issue_are_covered():
    """EVA02, SigLIP2, PE-Core and MobileCLIP2 take prompts where their
    towers allow, and match open_clip at depth 0."""
    for name in ('EVA02-L-14', 'PE-Core-L-14-336', 'MobileCLIP2-S2',
                 'ViT-L-16-SigLIP2-256', 'RN50', 'convnext_base'):
        assert DOCUMENTED[name]['parity'] == 'ok', name
    for name in ('EVA02-L-14', 'PE-Core-L-14-336', 'ViT-L-16-SigLIP2-256'):
        assert DOCUMENTED[name]['roles'] == 'teacher, student'
        assert DOCUMENTED[name]['visual prompts'] == 'yes'
    assert DOCUMENTED['ViT-L-16-SigLIP2-256']['text prompts'] == \
        'yes (tokenizer timm/ViT-L-16-SigLIP2-256)'
    assert DOCUMENTED['MobileCLIP2-S2']['visual prompts'].startswith('no: ')


def test_scaling_restores_timm():
    create = timm.create_model
    with COVERAGE.small_timm_trunks():
        assert timm.create_model is not create
    assert timm.create_model is create


def test_unknown_model_names_are_refused(capsys):
    assert COVERAGE.main(['--models', 'ViT-Q-99']) == 1
    assert "ViT-Q-99" in capsys.readouterr().out.splitlines()[-1]
