"""Reading the tensors of a TorchScript archive (the OpenAI CLIP files)
with a restricted unpickler, never compiling or running its code."""
import collections
import io
import pickle
import re
import zipfile
from typing import Any, Callable, Dict, NoReturn

import torch
from torch import Tensor, nn

from mmpromptkd.compat import PurePythonUnpickler, opcode_handlers

# The storage types an archive may name: each loads as its dtype, nothing
# callable (torch's deprecated typed-storage classes are never touched).
_STORAGE_DTYPES = {
    f'{name}Storage': dtype
    for name, dtype in (('Float', torch.float32), ('Double', torch.float64),
                        ('Half', torch.float16), ('BFloat16', torch.bfloat16),
                        ('Long', torch.int64), ('Int', torch.int32),
                        ('Short', torch.int16), ('Char', torch.int8),
                        ('Byte', torch.uint8), ('Bool', torch.bool))}


_Storage = collections.namedtuple('_Storage', ['data', 'dtype'])


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple,
                    stride: tuple, requires_grad: bool, *hooks) -> Tensor:
    """``torch._utils._rebuild_tensor_v2`` (``set_`` checks the bounds)."""
    tensor = torch.empty(0, dtype=storage.dtype)
    tensor.set_(storage.data, offset, torch.Size(size), stride)
    tensor.requires_grad = bool(requires_grad)
    return tensor


def _rebuild_parameter(data: Tensor, requires_grad: bool, *hooks) -> Tensor:
    """``torch._utils._rebuild_parameter``."""
    return nn.Parameter(data, bool(requires_grad))


# Globals a TorchScript ``data.pkl`` may reference besides its own
# ``__torch__.*`` module classes and storage types, and what they load as.
_TORCHSCRIPT_GLOBALS = {
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
    ('collections', 'OrderedDict'): collections.OrderedDict}


def zip_names(path: str) -> list:
    """The member names of a zip file; none if ``path`` is not one."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return []


def is_torchscript_archive(path: str) -> bool:
    """Whether ``path`` was written by ``torch.jit.save``."""
    return any(name.endswith('/constants.pkl') or '/code/' in name
               for name in zip_names(path))


class _ScriptObject:
    """Stand-in for a ``__torch__.*`` class: it only keeps its state."""

    state = None
    built = False


# Opcodes of the pickles TorchScript writes (protocol 2); any other opcode
# in a data.pkl is refused before it runs.
_PLAIN_OPCODES = (
    'PROTO', 'STOP', 'MARK', 'POP', 'POP_MARK', 'DUP', 'GLOBAL', 'BINPUT',
    'LONG_BINPUT', 'BINGET', 'LONG_BINGET', 'EMPTY_TUPLE', 'TUPLE', 'TUPLE1',
    'TUPLE2', 'TUPLE3', 'EMPTY_DICT', 'EMPTY_LIST', 'BININT', 'BININT1',
    'BININT2', 'LONG1', 'BINFLOAT', 'NONE', 'NEWTRUE', 'NEWFALSE',
    'BINUNICODE', 'SHORT_BINSTRING', 'BINSTRING', 'BINBYTES',
    'SHORT_BINBYTES', 'BINPERSID')
_DICTS = (dict, collections.OrderedDict)


class _OpcodeTable(dict):
    """An opcode table that refuses the opcodes it does not hold."""

    def __missing__(self, key: int) -> Callable:

        def refuse(unpickler: '_TorchScriptUnpickler') -> None:
            unpickler._refuse(f'uses the pickle opcode {bytes([key])!r}, '
                              'which weight archives do not need')

        return refuse


class _TorchScriptUnpickler(PurePythonUnpickler):
    """Unpickler of a TorchScript ``data.pkl`` that only rebuilds tensors
    (opcodes that call or mutate an object are checked before they run)."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str,
                 path: str) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix
        self._path = path
        self._storages: Dict[str, torch.UntypedStorage] = {}

    def _refuse(self, what: str) -> NoReturn:
        raise pickle.UnpicklingError(
            f'{self._path}: the TorchScript archive {what}; refusing to load '
            'it. Only CLIP weight archives are supported.')

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith('__torch__'):
            return _ScriptObject
        if (module, name) in _TORCHSCRIPT_GLOBALS:
            return _TORCHSCRIPT_GLOBALS[module, name]
        if module == 'torch' and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        self._refuse(f'references the global "{module}.{name}", which is '
                     'not a tensor type')

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5
                and pid[0] == 'storage'):
            self._refuse(f'has an unexpected persistent id {pid!r}')
        _, storage_type, key, _location, _numel = pid
        if not isinstance(storage_type, torch.dtype):
            self._refuse(f'names {storage_type!r} as a storage type')
        if not (isinstance(key, str) and re.fullmatch(r'\w+', key)):
            self._refuse(f'names the storage {key!r}')
        if key not in self._storages:
            try:
                raw = self._archive.read(f'{self._prefix}data/{key}')
            except KeyError:
                self._refuse(f'lacks the storage data/{key}')
            self._storages[key] = torch.UntypedStorage.from_buffer(
                raw, dtype=torch.uint8) if raw else torch.UntypedStorage(0)
        return _Storage(self._storages[key], storage_type)

    def _load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if not isinstance(args, tuple):
            self._refuse('calls a function with arguments that are not a '
                         'tuple')
        if func is collections.OrderedDict and args == ():
            result = collections.OrderedDict()
        elif func is _rebuild_tensor and args and \
                isinstance(args[0], _Storage):
            try:
                result = func(*args)
            except (RuntimeError, TypeError, ValueError) as e:
                self._refuse(f'holds a tensor that does not fit its storage '
                             f'({e})')
        elif func is _rebuild_parameter and args and \
                isinstance(args[0], torch.Tensor):
            result = func(*args)
        else:
            self._refuse(f'calls {func!r} with {len(args)} argument(s), '
                         'which rebuilds no tensor')
        self.stack[-1] = result

    def _load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        if cls is not _ScriptObject or args != ():
            self._refuse(f'creates an object of {cls!r}')
        self.append(_ScriptObject())

    def _load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is not _ScriptObject or inst.built:
            self._refuse(f'sets the state of {type(inst).__name__} '
                         f'{inst!r}, which is not a new module object')
        inst.state, inst.built = state, True

    def _target(self, kinds: tuple, what: str) -> Any:
        target = self.stack[-1]
        if type(target) not in kinds:
            self._refuse(f'{what} {type(target).__name__} {target!r}')
        return target

    def _load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._target(_DICTS, 'sets an item of')[key] = value

    def _load_setitems(self) -> None:
        items = self.pop_mark()
        target = self._target(_DICTS, 'sets items of')
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def _load_append(self) -> None:
        value = self.stack.pop()
        self._target((list, ), 'appends to').append(value)

    def _load_appends(self) -> None:
        items = self.pop_mark()
        self._target((list, ), 'appends to').extend(items)

    dispatch: Dict[int, Callable] = _OpcodeTable(
        opcode_handlers(_PLAIN_OPCODES))
    dispatch.update({
        getattr(pickle, name)[0]: handler
        for name, handler in (
            ('REDUCE', _load_reduce), ('NEWOBJ', _load_newobj),
            ('BUILD', _load_build), ('SETITEM', _load_setitem),
            ('SETITEMS', _load_setitems), ('APPEND', _load_append),
            ('APPENDS', _load_appends))
    })


def _tensors(obj: Any, prefix: str = '') -> Dict[str, torch.Tensor]:
    """The attribute tree of a TorchScript module, flattened."""
    state = obj.state if isinstance(obj, _ScriptObject) else obj
    found = {}
    for name, value in state.items() if isinstance(state, dict) else ():
        if isinstance(value, torch.Tensor):
            found[prefix + name] = value
        elif isinstance(value, (_ScriptObject, dict)):
            found.update(_tensors(value, f'{prefix}{name}.'))
    return found


def read_torchscript_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Every tensor attribute of a TorchScript archive, by dotted name,
    without running its code (the caller filters out the tensors that are
    no parameter or buffer, e.g. OpenAI CLIP's ``input_resolution``).

    Args:
        path (str): A file written by ``torch.jit.save``.
    """
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith('/data.pkl')]
        if len(pickles) != 1:
            raise ValueError(f'{path}: expected one data.pkl in the '
                             f'TorchScript archive, found {len(pickles)}')
        prefix = pickles[0][:-len('data.pkl')]
        return _tensors(_TorchScriptUnpickler(
            archive.read(pickles[0]), archive, prefix, path).load())
