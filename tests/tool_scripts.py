"""Import the scripts of ``tools/`` as modules, to call them in-process."""
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Union

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / 'tools'


def load_tool(path: Union[str, Path]) -> ModuleType:
    """A fresh module of a tool script.

    Args:
        path (str | Path): The script, relative to ``tools/`` (e.g.
            ``'train.py'``, ``'misc/dry_run.py'``) or absolute.

    Returns:
        ModuleType: The executed script; ``main`` is its entry point.
    """
    path = TOOLS / path
    name = '_tool_' + '_'.join(path.relative_to(REPO).with_suffix('').parts)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
