"""The package's layers import one way (as the README's layout says)."""
import ast
from pathlib import Path

import mmpromptkd

PACKAGE = Path(mmpromptkd.__file__).parent
#: What each subpackage may import from the others.
ALLOWED = {
    'compat': set(),
    'fileio': set(),
    'utils': {'compat', 'fileio', 'registry'},
    'models': {'compat', 'fileio', 'registry', 'utils'},
    'datasets': {'compat', 'fileio', 'registry', 'utils'},
    'evaluation': {'compat', 'fileio', 'registry', 'utils'},
    'teacher_cache':
    {'compat', 'datasets', 'engine', 'fileio', 'models', 'registry', 'utils'},
}


def imported_subpackages(path: Path) -> set:
    """The ``mmpromptkd`` subpackages a file imports, relative or not."""
    here = path.relative_to(PACKAGE).parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = list(here[:len(here) - node.level + 1])
            names = ['.'.join(['mmpromptkd'] + base +
                              ([node.module] if node.module else []))]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or '']
        for name in names:
            parts = name.split('.')
            if parts[0] == 'mmpromptkd' and len(parts) > 1:
                found.add(parts[1])
    return found


def test_lower_layers_import_only_lower_layers():
    wrong = {}
    for subpackage, allowed in ALLOWED.items():
        for path in (PACKAGE / subpackage).rglob('*.py'):
            extra = imported_subpackages(path) - allowed - {subpackage}
            if extra:
                wrong[str(path.relative_to(PACKAGE))] = sorted(extra)
    assert not wrong


def test_the_package_never_imports_the_tools():
    """What the tools share (``tools/misc/run_cli.py``) stays outside."""
    assert not (PACKAGE / 'cli').exists()
    tools = {p.stem for p in (PACKAGE.parent / 'tools').rglob('*.py')}
    users = []
    for path in PACKAGE.rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module]
            else:
                continue
            if {n.split('.')[0] for n in names} & tools:
                users.append(str(path.relative_to(PACKAGE)))
    assert users == []


def test_the_check_sees_imports():
    """The checker finds absolute and relative imports of subpackages."""
    path = PACKAGE / 'models' / 'distillers' / 'promptkd_distiller.py'
    assert {'registry', 'models'} <= imported_subpackages(path)
