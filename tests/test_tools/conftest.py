"""Fixtures of the tool tests: generated data and one trained run."""
import os.path as osp
import sys
from pathlib import Path

import pytest

# The helpers module sits next to this file.
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from synthetic_shapes import generate_coop_dataset  # noqa: E402
from tool_runs import CONFIG, call_tool, check_ok, train_cmd  # noqa: E402


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('data') / 'synthetic_shapes'
    generate_coop_dataset(root, num_classes=6, train_per_class=4,
                          val_per_class=2, test_per_class=3)
    return root


@pytest.fixture(scope='session')
def trained(shapes_root, tmp_path_factory) -> Path:
    """Work directory of an uninterrupted 2-epoch run (24 images, batch 8)."""
    tmp = tmp_path_factory.mktemp('trained')
    work_dir = tmp / 'work_dir'
    _, script, *args = train_cmd(CONFIG, work_dir, shapes_root, 2)
    check_ok(call_tool(script, args))
    return work_dir
