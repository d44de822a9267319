"""Fixtures of the tool tests: generated data and one trained run."""
import os.path as osp
import sys
from pathlib import Path

import pytest

# The helpers module sits next to this file.
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from tool_runs import (CONFIG, REPO, TOOLS, check_ok,  # noqa: E402
                       run_tool, train_cmd)


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('data') / 'synthetic_shapes'
    check_ok(
        run_tool([
            sys.executable, TOOLS / 'misc' / 'generate_shapes_dataset.py',
            root, '--num-classes', '6', '--train-per-class', '4',
            '--val-per-class', '2', '--test-per-class', '3'
        ],
             cwd=REPO))
    return root


@pytest.fixture(scope='session')
def trained(shapes_root, tmp_path_factory) -> Path:
    """Work directory of an uninterrupted 2-epoch run (24 images, batch 8)."""
    tmp = tmp_path_factory.mktemp('trained')
    work_dir = tmp / 'work_dir'
    check_ok(run_tool(train_cmd(CONFIG, work_dir, shapes_root, 2), cwd=tmp))
    return work_dir
