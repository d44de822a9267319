"""The torch version that setup.py promises is the one installed or older."""
import ast
import re
from pathlib import Path

import torch
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def _stated_floor() -> Version:
    """The ``torch>=X`` of setup.py, read without running it."""
    tree = ast.parse((REPO / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
                getattr(t, 'id', None) == 'TORCH_REQUIREMENT'
                for t in node.targets):
            match = re.fullmatch(r'torch>=([\d.]+)', node.value.value)
            assert match, node.value.value
            return Version(match.group(1))
    raise AssertionError('setup.py has no TORCH_REQUIREMENT')


def test_installed_torch_meets_the_stated_floor():
    installed = Version(torch.__version__.split('+')[0])
    assert installed >= _stated_floor()


def test_the_floor_covers_the_apis_used():
    # Each API the floor is chosen for exists in the installed torch.
    assert callable(torch.serialization.safe_globals)
    assert 'dynamo' in torch.onnx.export.__code__.co_varnames
    assert callable(torch.compile)
    assert _stated_floor() >= Version('2.6')


def test_readme_states_the_same_floor():
    readme = (REPO / 'README.md').read_text()
    assert f'Any torch >= {_stated_floor()} works' in readme
