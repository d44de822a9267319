"""Private names of CPython's pickle module that the package uses, and why.

``pickle._Unpickler``: the only unpickler whose opcode table a subclass can
replace (the C one runs REDUCE, NEWOBJ, BUILD and SETITEMS unchecked).
"""
import pickle
from typing import Callable, Dict, Iterable


PurePythonUnpickler = pickle._Unpickler


def opcode_handlers(names: Iterable[str]) -> Dict[int, Callable]:
    """The pure-Python unpickler's ``dispatch`` entries, by opcode byte,
    of the named opcodes (e.g. ``'MARK'``)."""
    codes = [getattr(pickle, name)[0] for name in names]
    return {code: PurePythonUnpickler.dispatch[code] for code in codes}
