"""The paper configs follow the official protocol listed in the docs.

The reference values are read from ``docs/reference_differences.md`` (one
table, also what users read); every config a row matches must hold the
value. The learning rate of every epoch is checked against an independent
implementation of Dassl's scheduler.
"""
import ast
import fnmatch
import functools
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config

import mmpromptkd  # noqa: F401
from lr_schedules import dassl_lrs, schedule_length, scheduled_lrs

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOC = osp.join(ROOT, 'docs', 'reference_differences.md')
CONFIGS = sorted(
    osp.relpath(p, osp.join(ROOT, 'configs'))
    for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                       recursive=True) if '_base_' not in p)
MMPRETRAIN_RUNTIME = '_mmpretrain-runtime.py'
ROW = re.compile(r'^\| (`[^|]+`) \| `([^`]+)` \| `([^`]+)` \| [^|]+ \|$')


def reference_rows():
    """``(patterns, key, value)`` of every row of the reference table."""
    with open(DOC, encoding='utf-8') as f:
        text = f.read()
    table = text.split('<!-- reference-values: begin -->')[1].split(
        '<!-- reference-values: end -->')[0]
    rows = []
    for line in table.strip().splitlines()[2:]:
        match = ROW.match(line)
        assert match, f'malformed row in {DOC}: {line}'
        patterns = [p.strip('`') for p in match.group(1).split()]
        rows.append((patterns, match.group(2),
                     ast.literal_eval(match.group(3))))
    return rows


ROWS = reference_rows()


@functools.lru_cache(maxsize=None)
def load(name):
    return Config.fromfile(osp.join(ROOT, 'configs', name))


def lookup(cfg, key):
    value = cfg
    for part in key.split('.'):
        assert part in value, f'{key}: no {part!r}'
        value = value[part]
    return value


def test_the_table_is_substantial():
    assert len(ROWS) >= 30


@pytest.mark.parametrize('row', ROWS, ids=lambda r: f'{r[1]}={r[2]!r}')
def test_reference_value(row):
    patterns, key, value = row
    left_out = set()
    for pattern in (p[1:] for p in patterns if p.startswith('!')):
        left_out.update(fnmatch.filter(CONFIGS, pattern))
        assert left_out, f'{pattern} matches no config'
    for pattern in (p for p in patterns if not p.startswith('!')):
        matched = fnmatch.filter(CONFIGS, pattern)
        assert matched, f'{pattern} matches no config'
        for name in sorted(set(matched) - left_out):
            assert lookup(load(name), key) == value, f'{name}: {key}'


# The mmpretrain-runtime example keeps mmpretrain's schedule on purpose
# (tests/test_tools/test_openmmlab_tools.py trains it).
TRAINING = [
    n for n in CONFIGS
    if 'param_scheduler' in load(n) and not n.endswith(MMPRETRAIN_RUNTIME)
]


def test_every_family_trains():
    families = {n.split('/')[0] for n in TRAINING}
    assert {'promptkd', 'promptsrc', 'maple', 'ivlp'} <= families


@pytest.mark.parametrize('name', TRAINING)
def test_lr_of_every_epoch_is_dassls(name):
    cfg = load(name)
    # Dassl's warm-up: as many steps as ConstantLR holds (its `end` - 1).
    warmup = next(s['end'] - 1 for s in cfg.param_scheduler
                  if s['type'] == 'ConstantLR')
    expected = dassl_lrs(cfg.optim_wrapper.optimizer.lr,
                         schedule_length(cfg), warmup_epoch=warmup)
    assert scheduled_lrs(cfg) == pytest.approx(
        expected, rel=1e-9, abs=1e-15)
    if cfg.train_cfg.get('max_epochs') == 20 and \
            cfg.optim_wrapper.optimizer.lr == 0.005:
        lrs = scheduled_lrs(cfg)
        assert lrs[0] == pytest.approx(1e-5)
        assert lrs[1] == pytest.approx(0.005)
        assert lrs[19] == pytest.approx(1.2236e-4, rel=1e-4)


MAIN = re.compile(r'^promptkd/promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_'
                  r'(b2n|xd-imagenet-to)-[a-z0-9-]+\.py$')


def test_every_b2n_and_xd_config_has_a_reference_selection_variant():
    main = [n for n in CONFIGS if MAIN.match(n)]
    assert len(main) == 21
    for name in main:
        variant = name[:-3] + '_reference-selection.py'
        assert variant in CONFIGS, variant
        base, cfg = load(name), load(variant)
        # Only the selection differs.
        assert cfg.model == base.model
        assert cfg.train_dataloader == base.train_dataloader
        assert cfg.val_dataloader.dataset.type == \
            base.val_dataloader.dataset.type
