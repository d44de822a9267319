"""Import the scripts of ``tools/`` as modules, to call them in-process."""
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Union

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / 'tools'


def load_tool(path: Union[str, Path]) -> ModuleType:
    """A fresh module of a tool script, relative to ``tools/`` or absolute."""
    path = TOOLS / path
    name = '_tool_' + '_'.join(path.relative_to(REPO).with_suffix('').parts)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def status_mib(key: str) -> float:
    """``'VmRSS'`` or ``'VmHWM'`` (not ``ru_maxrss``: a parent's over an
    exec) of this process in MiB, NaN where not listed."""
    with open('/proc/self/status') as f:
        line = next((x for x in f if x.startswith(key + ':')), None)
    return float('nan') if line is None else int(line.split()[1]) / 1024
