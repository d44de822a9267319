"""Private names of CPython's pickle module that the package uses, and why.

``pickle._Unpickler``: the pure-Python unpickler is the only one whose
opcode table (``dispatch``) a subclass can replace. The C unpickler
(``pickle.Unpickler``) lets a subclass choose what a global name loads as
(``find_class``), but then runs REDUCE, NEWOBJ, BUILD and SETITEMS on it
unchecked; the TorchScript reader checks each of those before it runs.
"""
import pickle
from typing import Callable, Dict, Iterable

__all__ = ['PurePythonUnpickler', 'opcode_handlers']

#: The pure-Python unpickler (a subclass may replace ``dispatch``).
PurePythonUnpickler = pickle._Unpickler


def opcode_handlers(names: Iterable[str]) -> Dict[int, Callable]:
    """The pure-Python unpickler's handlers of the named opcodes.

    Args:
        names (Iterable[str]): Opcode names of the ``pickle`` module, e.g.
            ``'MARK'``.

    Returns:
        dict[int, callable]: ``dispatch`` entries, by opcode byte.
    """
    codes = [getattr(pickle, name)[0] for name in names]
    return {code: PurePythonUnpickler.dispatch[code] for code in codes}
