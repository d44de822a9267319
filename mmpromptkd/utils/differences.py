"""Where two lists that should be equal first differ, for error messages."""
from typing import Optional, Sequence, Tuple


def first_difference(
        old: Sequence[str], new: Sequence[str],
        names: Optional[Sequence[str]] = None,
        words: Tuple[str, str] = ('recorded', 'now')) -> Optional[str]:
    """The first entry where ``old`` and ``new`` differ, described
    (``"<name>: <old word> <a>, <new word> <b>"``, else the two lengths),
    or None if they are equal.

    Args:
        old (Sequence[str]): What was recorded or stored.
        new (Sequence[str]): What is there now.
        names (Sequence[str], optional): A name per entry (``entry i``).
        words (tuple[str, str]): What ``old`` and ``new`` are called.
    """
    for i, (a, b) in enumerate(zip(old, new)):
        if a != b:
            name = names[i] if names is not None else f'entry {i}'
            return f'{name}: {words[0]} {a}, {words[1]} {b}'
    if len(old) != len(new):
        return f'{len(old)} {words[0]} entries, {len(new)} {words[1]}'
    return None
