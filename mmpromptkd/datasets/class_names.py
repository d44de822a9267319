"""Class names given by a file or a list, checked before anything is built."""
import json
import os.path as osp
from typing import List, Sequence, Tuple, Union

from mmpromptkd.utils.class_name_keys import (normalize_class_name,
                                              repeated_class_names)

FORMATS = ('a list of names, a .txt file with one name per line, or a '
           '.json file holding a list of names')


def _check_names(names: Sequence[object], source: str, unit: str = 'entry',
                 first: int = 0) -> Tuple[str, ...]:
    """Refuse non-strings, blank, padded and repeated names; normalise
    (errors name ``<unit> <number from first>``)."""
    where = [f'{unit} {i}' for i in range(first, first + len(names))]
    for name, at in zip(names, where):
        if not isinstance(name, str):
            raise ValueError(f'{source}, {at}: class names must be strings, '
                             f'got {name!r}')
        if not normalize_class_name(name):
            raise ValueError(f'{source}, {at}: blank class name; remove the '
                             'empty entry (every entry is one class, in '
                             'label order)')
        if name != name.strip():
            raise ValueError(f'{source}, {at}: class name {name!r} starts or '
                             'ends with whitespace; the text encoder would '
                             'read it as written')
    # Names CLIP reads alike (Unicode form, zero-width characters, kinds
    # of whitespace) are one class: refused as repeated.
    repeated = repeated_class_names(names)
    if repeated:
        listed = '; '.join(
            f'{name!r} at ' + ', '.join(
                where[i] + ('' if names[i] == name else f' ({names[i]!r})')
                for i in at)
            for name, at in list(repeated.items())[:5])
        raise ValueError(f'{source}: {len(repeated)} class name(s) appear '
                         f'more than once ({listed}); every class must be '
                         'named once')
    if not names:
        raise ValueError(f'{source} names no class; expected {FORMATS}')
    return tuple(normalize_class_name(n) for n in names)


def read_class_names(source: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """The class names of a list, a ``.txt`` (one a line) or ``.json`` file
    (a blank, padded or repeated name is an error saying where)."""
    if not isinstance(source, str):
        if not isinstance(source, (list, tuple)):
            raise ValueError(f'classes must be {FORMATS}, got '
                             f'{type(source).__name__}')
        return _check_names(list(source), 'classes')
    path = osp.expanduser(source)
    ext = osp.splitext(path)[1].lower()
    if ext not in ('.txt', '.json'):
        raise ValueError(f'classes file {path}: expected a .txt or .json file '
                         f'({FORMATS})')
    if not osp.isfile(path):
        raise FileNotFoundError(f'classes file {path} not found; expected '
                                f'{FORMATS}')
    try:  # utf-8-sig: a byte-order mark is no part of the first name
        with open(path, encoding='utf-8-sig') as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f'classes file {path} is not UTF-8 text ({e})') \
            from e
    if ext == '.json':
        try:
            names = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path} is not valid JSON: {e.msg} at line '
                             f'{e.lineno}; expected a list of class '
                             'names') from e
        if not isinstance(names, list):
            raise ValueError(f'{path}: top level is a {type(names).__name__};'
                             ' expected a list of class names')
        return _check_names(names, path)
    lines: List[str] = text.rstrip('\r\n').splitlines() if text.strip(
        '\r\n') else []
    return _check_names(lines, path, 'line', 1)


def distinct_class_names(names: Sequence[str],
                         source: str) -> Tuple[str, ...]:
    """The names by label, unless two labels are one class to CLIP
    (``source`` names them in the error)."""
    repeated = repeated_class_names(names)
    if repeated:
        listed = '; '.join(
            f'{name!r}: labels {", ".join(map(str, at))}'
            for name, at in list(repeated.items())[:5])
        raise ValueError(f'{source}: labels that CLIP cannot tell apart '
                         f'carry one class name ({listed}); every class '
                         'must be named once')
    return tuple(names)
