"""Safe reading of checkpoint files.

Nothing here unpickles arbitrary objects: plain checkpoints go through
``torch.load(weights_only=True)`` with an allowlist of the few globals
mmengine writes (:data:`SAFE_GLOBALS`, active only around our own loads, as
``torch.serialization.safe_globals``), and TorchScript archives, such as the
OpenAI CLIP files ``ViT-B-16.pt`` and ``ViT-L-14.pt``, are read by a
restricted unpickler that only rebuilds tensors and never compiles or runs
TorchScript code.

mmengine's own checkpoint loader is left as it is. Our configs select
:class:`SafeLoadingRunner`, which reads ``--resume``, ``load_from`` and
``tools/test.py CKPT`` through :func:`load_checkpoint_file`; elsewhere (e.g.
mmpretrain's ``get_model(pretrained=...)``) a path written as
``mmpromptkd://PATH`` selects the same loader through mmengine's scheme
registry (:func:`load_from_local`).
"""
import collections
import io
import os.path as osp
import pickle
import re
import warnings
import zipfile
from typing import Any, Callable, Dict, NoReturn, Union

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

from mmpromptkd.fileio import atomic_write

__all__ = [
    'REMOTE_SCHEMES', 'SAFE_GLOBALS', 'SAFE_SCHEME', 'is_complete_checkpoint',
    'is_remote_path', 'is_torchscript_archive', 'load_checkpoint_file',
    'load_from_local', 'raise_remote_refused', 'read_state_dict',
    'read_torchscript_state_dict', 'save_checkpoint_file'
]

_DEFAULT_STATISTICS = {'min', 'max', 'current', 'mean'}


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to the statistics methods of HistoryBuffer.

    mmengine pickles a HistoryBuffer's statistics methods as
    ``getattr(HistoryBuffer, 'min')``; allowing ``getattr`` itself would
    allow any code.
    """
    allowed = _DEFAULT_STATISTICS | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refused getattr({obj!r}, {name!r}) while loading a checkpoint: '
        'only HistoryBuffer statistics methods may be resolved')


def _numpy_core(name: str) -> Any:
    core = getattr(np, '_core', None) or np.core
    return getattr(core.multiarray, name)


def _numpy_safe_globals() -> list:
    """numpy globals of plain numeric arrays and scalars in a checkpoint."""
    dtypes = [np.float16, np.float32, np.float64, np.int8, np.int16,
              np.int32, np.int64, np.uint8, np.bool_]
    items = [np.ndarray, np.dtype] + [type(np.dtype(t)) for t in dtypes]
    for name in ('_reconstruct', 'scalar'):
        func = _numpy_core(name)
        items.append(func)
        # numpy 2 writes numpy._core, numpy 1 numpy.core; accept both.
        items.append((func, f'numpy.core.multiarray.{name}'))
        items.append((func, f'numpy._core.multiarray.{name}'))
    return items


# What an mmengine training checkpoint holds besides tensors and plain
# containers: the message hub's HistoryBuffers and their numpy arrays.
SAFE_GLOBALS = [
    HistoryBuffer,
    (_history_buffer_getattr, 'builtins.getattr'),
    (_history_buffer_getattr, '__builtin__.getattr'),
] + _numpy_safe_globals()

MapLocation = Union[None, str, torch.device, Callable, Dict[str, str]]

# Globals a TorchScript ``data.pkl`` may reference besides its own
# ``__torch__.*`` module classes.
_TORCHSCRIPT_GLOBALS = {
    ('torch._utils', '_rebuild_tensor_v2'),
    ('torch._utils', '_rebuild_parameter'),
    ('collections', 'OrderedDict'),
}


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file (zip format).

    A copy cut short loses the zip directory at the end of the file, so this
    detects truncation without reading the tensors.

    Args:
        path (str): The file.

    Returns:
        bool: True for a readable zip archive with a ``data.pkl`` record.
    """
    if not osp.isfile(path) or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any(
                name.endswith('data.pkl') for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def is_torchscript_archive(path: str) -> bool:
    """Whether ``path`` is a TorchScript archive (zip with compiled code).

    Args:
        path (str): File to inspect.

    Returns:
        bool: True for files written by ``torch.jit.save``.
    """
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(
            name.endswith('/constants.pkl') or '/code/' in name
            for name in archive.namelist())


class _ScriptObject:
    """Stand-in for a ``__torch__.*`` class: it only keeps its state."""

    def __init__(self) -> None:
        self.state = None
        self.built = False


def _opcode(name: str) -> int:
    return getattr(pickle, name)[0]


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


class _TorchScriptUnpickler(pickle._Unpickler):
    """Unpickler of a TorchScript ``data.pkl`` that only rebuilds tensors.

    The pure-Python unpickler is used because its opcode table can be
    replaced: only the opcodes TorchScript writes are honoured, and those
    that call or mutate an object (REDUCE, NEWOBJ, BUILD, SETITEM(S),
    APPEND(S)) are checked against what a weight archive needs: tensors
    rebuilt from the archive's own storages, empty ``OrderedDict`` hooks,
    module stand-ins created once and given their state once, and items
    added to plain dicts and lists. Anything else (a call on a class, an
    attribute write on a type or a function) is refused before it happens.
    """

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str,
                 path: str) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix
        self._path = path
        self._storages: Dict[str, torch.UntypedStorage] = {}
        # Storages this archive made, by id (kept alive, so ids stay unique).
        self._typed_storages: Dict[int, Any] = {}

    def _refuse(self, what: str) -> NoReturn:
        raise pickle.UnpicklingError(
            f'{self._path}: the TorchScript archive {what}; refusing to load '
            'it. Only CLIP weight archives are supported.')

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith('__torch__'):
            return _ScriptObject
        if (module, name) in _TORCHSCRIPT_GLOBALS:
            return getattr(__import__(module, fromlist=[name]), name)
        if module == 'torch' and re.fullmatch(r'[A-Za-z0-9]+Storage', name):
            storage_type = getattr(torch, name, None)
            if isinstance(storage_type, type) and hasattr(
                    storage_type, 'dtype'):
                return storage_type
        self._refuse(f'references the global "{module}.{name}", which is '
                     'not a tensor type')

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5
                and pid[0] == 'storage'):
            self._refuse(f'has an unexpected persistent id {pid!r}')
        _, storage_type, key, _location, _numel = pid
        if not (isinstance(storage_type, type)
                and storage_type.__module__.startswith('torch')
                and hasattr(storage_type, 'dtype')):
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
        typed = torch.storage.TypedStorage(
            wrap_storage=self._storages[key],
            dtype=storage_type.dtype,
            _internal=True)
        self._typed_storages[id(typed)] = typed
        return typed

    # Checked versions of the opcodes that call or mutate objects.
    def _load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if not isinstance(args, tuple):
            self._refuse('calls a function with arguments that are not a '
                         'tuple')
        if func is collections.OrderedDict and args == ():
            result = collections.OrderedDict()
        elif func is torch._utils._rebuild_tensor_v2 and args and \
                self._typed_storages.get(id(args[0])) is args[0]:
            try:
                result = func(*args)
            except (RuntimeError, TypeError, ValueError) as e:
                self._refuse(f'holds a tensor that does not fit its storage '
                             f'({e})')
        elif func is torch._utils._rebuild_parameter and args and \
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

    dispatch: Dict[int, Callable] = {
        _opcode(name): pickle._Unpickler.dispatch[_opcode(name)]
        for name in _PLAIN_OPCODES
    }
    dispatch.update({
        _opcode('REDUCE'): _load_reduce,
        _opcode('NEWOBJ'): _load_newobj,
        _opcode('BUILD'): _load_build,
        _opcode('SETITEM'): _load_setitem,
        _opcode('SETITEMS'): _load_setitems,
        _opcode('APPEND'): _load_append,
        _opcode('APPENDS'): _load_appends,
    })


class _OpcodeTable(dict):
    """An opcode table that refuses the opcodes it does not hold."""

    def __missing__(self, key: int) -> Callable:

        def refuse(unpickler: _TorchScriptUnpickler) -> None:
            unpickler._refuse(f'uses the pickle opcode {bytes([key])!r}, '
                              'which weight archives do not need')

        return refuse


_TorchScriptUnpickler.dispatch = _OpcodeTable(_TorchScriptUnpickler.dispatch)


def _collect_tensors(obj: Any, prefix: str, out: Dict[str, torch.Tensor]):
    """Flatten the attribute tree of a TorchScript module into a dict."""
    state = obj.state if isinstance(obj, _ScriptObject) else obj
    if not isinstance(state, dict):
        return
    for name, value in state.items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        elif isinstance(value, (_ScriptObject, dict)):
            _collect_tensors(value, f'{prefix}{name}.', out)


def read_torchscript_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Read every tensor of a TorchScript archive without running its code.

    The result holds the module's parameters and buffers under their
    ``state_dict`` names, plus any other tensor attribute the archive stores
    (for OpenAI CLIP: ``input_resolution``, ``context_length`` and
    ``vocab_size``), which the caller filters.

    Args:
        path (str): A file written by ``torch.jit.save``.

    Returns:
        dict[str, Tensor]: Tensors by dotted attribute name.
    """
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith('/data.pkl')]
        if len(pickles) != 1:
            raise ValueError(f'{path}: expected one data.pkl in the '
                             f'TorchScript archive, found {len(pickles)}')
        prefix = pickles[0][:-len('data.pkl')]
        with warnings.catch_warnings():
            # Typed storages are deprecated but are what the format holds.
            warnings.simplefilter('ignore', UserWarning)
            root = _TorchScriptUnpickler(
                archive.read(pickles[0]), archive, prefix, path).load()
    tensors: Dict[str, torch.Tensor] = {}
    _collect_tensors(root, '', tensors)
    return tensors


def _refusal_reason(error: BaseException) -> str:
    """The informative line of torch's weights-only refusal message."""
    text = str(error)
    match = re.search(r'GLOBAL (\S+)', text)
    if match:
        return f'it references {match.group(1)}, which is not allowed'
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _move(tensor: torch.Tensor, map_location: MapLocation) -> torch.Tensor:
    """Apply a device-like ``map_location`` to a tensor read on the CPU."""
    if isinstance(map_location, (str, torch.device)):
        return tensor.to(map_location)
    # None, dicts and callables describe remapping of saved locations;
    # tensors of a TorchScript archive are read on the CPU and stay there.
    return tensor


def load_checkpoint_file(path: str,
                         map_location: MapLocation = 'cpu',
                         allow_unsafe: bool = False) -> Any:
    """Load a checkpoint without executing code stored in it.

    ``weights_only`` is always passed explicitly, so the environment
    variable ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` cannot make this unsafe.

    Args:
        path (str): Checkpoint file (``torch.save`` output or a TorchScript
            archive, for which the state dict is returned).
        map_location (str | torch.device | callable | dict, optional):
            Where the tensors go, as for :func:`torch.load`. Defaults to
            'cpu'.
        allow_unsafe (bool): Unpickle arbitrary objects. Only for files you
            trust completely: a crafted file can run any code. Defaults to
            False.

    Returns:
        Any: What the file holds.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        pickle.UnpicklingError: If the file holds objects outside the
            allowlist; the message names the file and the object.
        RuntimeError: If the file is not a complete checkpoint (e.g. a
            truncated copy); the message names the file.
    """
    if is_remote_path(path):
        raise_remote_refused(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    if is_torchscript_archive(path):
        return {
            k: _move(v, map_location)
            for k, v in read_torchscript_state_dict(path).items()
        }
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(
                path,
                map_location=map_location,
                weights_only=not allow_unsafe)
    except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(
            f'{path}: refused to load: the file contains objects outside the '
            f'allowlist of safe types ({_refusal_reason(e)}). If and only '
            'if you trust this file, load it with '
            'load_checkpoint_file(path, allow_unsafe=True).') from e
    except EOFError as e:
        raise EOFError(f'{path}: the checkpoint is empty or cut short; it '
                       'was not written completely') from e
    except RuntimeError as e:
        if 'zip archive' not in str(e):
            raise
        raise RuntimeError(
            f'{path}: not a complete checkpoint (truncated or corrupt: '
            f'{str(e).splitlines()[0]})') from e
    except (AttributeError, IndexError, KeyError, OverflowError, TypeError,
            ValueError, MemoryError) as e:
        # What torch's legacy reader raises on bytes that are no pickle.
        raise RuntimeError(
            f'{path}: not a checkpoint written by torch.save (the reader '
            f'failed with {type(e).__name__}: {e})') from e


# mmengine's checkpoint schemes other than local paths. Its loaders of
# URLs unpickle downloads with ``weights_only=False``.
REMOTE_SCHEMES = ('http://', 'https://', 'torchvision://', 'pavi://',
                  'openmmlab://', 'open-mmlab://', 'modelzoo://', 'mmcls://',
                  r'(\S+\:)?s3://', r'(\S+\:)?petrel://')


def is_remote_path(path: Any) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a file.

    Args:
        path (Any): A checkpoint path.

    Returns:
        bool: True for strings such as ``https://...`` or ``s3://...``.
    """
    return isinstance(path, str) and re.match(
        r'([A-Za-z][\w+.-]*:)?[A-Za-z][\w+.-]*://', path) is not None


def raise_remote_refused(path: str,
                         map_location: MapLocation = None) -> NoReturn:
    """Refuse a remote checkpoint, saying how to use it instead.

    ``load_from``, ``--resume`` and ``tools/test.py`` never unpickle a
    download (mmengine's URL loaders use ``weights_only=False``): the file
    is fetched by the user and then read safely.

    Args:
        path (str): The URL.
        map_location: Unused; mmengine passes it.

    Raises:
        ValueError: Always, naming the URL.
    """
    raise ValueError(
        f'{path}: remote checkpoints are not loaded (the download would be '
        'unpickled without the safety checks of local files). Download it '
        'first, e.g. `curl -L -o model.pth URL`, and pass the local path; '
        'it is then read with weights_only=True.')


# The prefix that selects :func:`load_from_local` in mmengine's
# ``CheckpointLoader`` (``load_checkpoint(model, 'mmpromptkd://a.pth')``).
SAFE_SCHEME = 'mmpromptkd://'


def load_from_local(filename: str, map_location: MapLocation = None) -> Any:
    """Read a local checkpoint safely and check that it is a checkpoint.

    Used by :class:`SafeLoadingRunner` and, for paths written as
    ``mmpromptkd://PATH``, by mmengine's ``CheckpointLoader``.

    Args:
        filename (str): Local path, optionally with the prefix
            :data:`SAFE_SCHEME`; ``~`` is expanded.
        map_location (str | torch.device | callable | dict, optional): As
            for :func:`torch.load`. Defaults to None.

    Returns:
        dict: What the file holds.

    Raises:
        TypeError: If the file holds no dict, or a ``state_dict`` that is
            not a dict.
    """
    if filename.startswith(SAFE_SCHEME):
        filename = filename[len(SAFE_SCHEME):]
    filename = osp.expanduser(filename)
    checkpoint = load_checkpoint_file(filename, map_location=map_location)
    if not isinstance(checkpoint, dict):
        raise TypeError(
            f'{filename}: holds a {type(checkpoint).__name__}, not a '
            'checkpoint (a dict with a "state_dict", or a state dict)')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict):
        raise TypeError(f'{filename}: "state_dict" is a '
                        f'{type(state_dict).__name__}, not a dict of tensors')
    return checkpoint


def read_state_dict(path: str, model: str) -> dict:
    """The state dict of a model checkpoint file, read safely.

    Args:
        path (str): An mmengine checkpoint (weights under ``state_dict``)
            or a bare state dict.
        model (str): What the checkpoint should be of, for messages (e.g.
            ``'PromptedCLIP'``).

    Returns:
        dict: The state dict.

    Raises:
        ValueError: For a TorchScript archive (a CLIP weight file given as a
            checkpoint) or a file that holds no dict.
    """
    if is_torchscript_archive(path):
        raise ValueError(
            f'{path} is a TorchScript archive (a CLIP weight file?), not a '
            f'{model} checkpoint; give CLIP weights as '
            'clip=dict(openai_file=...)')
    obj = load_checkpoint_file(path)
    state = obj.get('state_dict', obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict):
        raise ValueError(f'{path}: expected a state dict of {model}')
    return state


def save_checkpoint_file(obj: Any, path: str, overwrite: bool = False) -> None:
    """``torch.save`` into ``path`` atomically (never half a file).

    Args:
        obj (Any): What to save.
        path (str): Target file.
        overwrite (bool): Replace an existing file. Defaults to False, which
            refuses with an error naming the file.
    """
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; refusing to overwrite it')
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(buffer.getvalue(), path)
