"""Validation of model configs that come from files.

mmengine's registries build whatever a config's ``type`` names, and fall
back on importing a dotted name (``'os.system'``) or a scope's module
(``'evil.X'`` imports ``evil.registry``). A config stored in a data file
(an exported student's ``meta['model']``) is therefore checked before it is
built: every ``type`` must be one of this package's registered models (or
one of the few mmpretrain components they are built with), given by its bare
name or as ``mmpromptkd.<name>``, so that nothing is imported or called
because a file names it.
"""
from typing import Any, FrozenSet, Iterable, Optional

__all__ = ['STORED_CONFIG_EXTRA_TYPES', 'check_stored_config']

# mmpretrain components a stored model config of ours may name.
STORED_CONFIG_EXTRA_TYPES = frozenset({'ClsDataPreprocessor'})
_SCOPE = 'mmpromptkd'


def _allowed_types(extra: Iterable[str]) -> FrozenSet[str]:
    from mmpromptkd.registry import MODELS
    return frozenset(MODELS.module_dict) | frozenset(extra)


def check_stored_config(cfg: Any,
                        source: str,
                        extra_types: Optional[Iterable[str]] = None) -> None:
    """Refuse a stored model config that names anything but our models.

    Args:
        cfg (Any): The config read from a file (dicts, lists and values).
        source (str): Where it came from, for messages (e.g. the file and
            the key).
        extra_types (Iterable[str], optional): Further bare names to allow.
            Defaults to :data:`STORED_CONFIG_EXTRA_TYPES`.

    Raises:
        ValueError: If a ``type`` is not a string naming a registered model
            of this package, or a ``_scope_`` is not ``mmpromptkd``; the
            message names the source, the key path and the value.
    """
    allowed = _allowed_types(STORED_CONFIG_EXTRA_TYPES
                             if extra_types is None else extra_types)
    _check(cfg, source, 'model', allowed)


def _check(node: Any, source: str, where: str,
           allowed: FrozenSet[str]) -> None:
    if isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            _check(item, source, f'{where}[{i}]', allowed)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if not isinstance(key, str):
            raise ValueError(f'{source}: {where} has the key {key!r}; '
                             'config keys are strings')
        if key == 'type':
            name = value
            if isinstance(name, str) and name.startswith(_SCOPE + '.'):
                name = name[len(_SCOPE) + 1:]
            if not isinstance(name, str) or name not in allowed:
                raise ValueError(
                    f'{source}: {where}.type is {value!r}, which is not a '
                    f'model of mmpromptkd; a stored config may only name '
                    f'these types: {sorted(allowed)}. Nothing was built.')
        elif key == '_scope_' and value != _SCOPE:
            raise ValueError(f'{source}: {where}._scope_ is {value!r}; a '
                             f'stored config builds in the {_SCOPE!r} scope '
                             'only. Nothing was built.')
        else:
            _check(value, source, f'{where}.{key}', allowed)
