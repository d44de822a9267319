"""Shared fixtures of the reliability tests."""
import os.path as osp
import sys
from pathlib import Path

import pytest

# The helpers module sits next to this file.
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from reliability_utils import write_faults_module  # noqa: E402


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory) -> Path:
    """6 classes, 4 train / 1 val / 2 test images each (32 x 32 PNG)."""
    from synthetic_shapes import generate_coop_dataset
    root = tmp_path_factory.mktemp('reliability_data') / 'synthetic_shapes'
    generate_coop_dataset(
        root,
        num_classes=6,
        train_per_class=4,
        val_per_class=1,
        test_per_class=2)
    return root


@pytest.fixture(scope='session')
def plugin_dir(tmp_path_factory) -> Path:
    """A folder holding the fault-injection module (for PYTHONPATH)."""
    return write_faults_module(tmp_path_factory.mktemp('plugins'))
