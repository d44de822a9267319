"""Safe reading of checkpoint files.

Nothing here unpickles arbitrary objects: plain checkpoints go through
``torch.load(weights_only=True)`` (with the allowlist installed by
:mod:`mmpromptkd.compat`), and TorchScript archives, such as the OpenAI CLIP
files ``ViT-B-16.pt`` and ``ViT-L-14.pt``, are read by a restricted unpickler
that only rebuilds tensors and never compiles or runs TorchScript code.

mmengine reads local checkpoints (``--resume``, ``load_from``,
``tools/test.py CKPT``) with a bare ``torch.load(filename)``, which is safe
only while nothing overrides torch's default: the environment variable
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` turns it into arbitrary unpickling.
Importing this module therefore registers :func:`load_from_local`, which
always passes ``weights_only=True``, as mmengine's loader of local paths.
"""
import io
import os.path as osp
import pickle
import re
import warnings
import zipfile
from typing import Any, Callable, Dict, Union

import torch

__all__ = [
    'is_torchscript_archive', 'load_checkpoint_file', 'load_from_local',
    'read_torchscript_state_dict', 'register_safe_mmengine_loader',
    'save_checkpoint_file'
]

MapLocation = Union[None, str, torch.device, Callable, Dict[str, str]]

# Globals a TorchScript ``data.pkl`` may reference besides its own
# ``__torch__.*`` module classes.
_TORCHSCRIPT_GLOBALS = {
    ('torch._utils', '_rebuild_tensor_v2'),
    ('torch._utils', '_rebuild_parameter'),
    ('collections', 'OrderedDict'),
}


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

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _TorchScriptUnpickler(pickle.Unpickler):
    """Unpickler of a TorchScript ``data.pkl`` that only rebuilds tensors."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str,
                 path: str) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix
        self._path = path
        self._storages: Dict[str, torch.UntypedStorage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith('__torch__'):
            return _ScriptObject
        if (module, name) in _TORCHSCRIPT_GLOBALS:
            return getattr(__import__(module, fromlist=[name]), name)
        if module == 'torch' and name.endswith('Storage'):
            storage_type = getattr(torch, name, None)
            if storage_type is not None:
                return storage_type
        raise pickle.UnpicklingError(
            f'{self._path}: the TorchScript archive references the global '
            f'"{module}.{name}", which is not a tensor type; refusing to load '
            'it. Only CLIP weight archives are supported.')

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5
                and pid[0] == 'storage'):
            raise pickle.UnpicklingError(
                f'{self._path}: unexpected persistent id {pid!r}')
        _, storage_type, key, _location, _numel = pid
        if key not in self._storages:
            raw = self._archive.read(f'{self._prefix}data/{key}')
            self._storages[key] = torch.UntypedStorage.from_buffer(
                raw, dtype=torch.uint8) if raw else torch.UntypedStorage(0)
        return torch.storage.TypedStorage(
            wrap_storage=self._storages[key],
            dtype=storage_type.dtype,
            _internal=True)


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
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    if is_torchscript_archive(path):
        return {
            k: _move(v, map_location)
            for k, v in read_torchscript_state_dict(path).items()
        }
    try:
        return torch.load(
            path, map_location=map_location, weights_only=not allow_unsafe)
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


def load_from_local(filename: str, map_location: MapLocation = None) -> Any:
    """mmengine's loader of local checkpoint paths, made safe.

    It replaces ``mmengine.runner.checkpoint.load_from_local`` (see
    :func:`register_safe_mmengine_loader`), so ``--resume``, ``load_from``
    and ``tools/test.py CKPT`` read files through
    :func:`load_checkpoint_file`.

    Args:
        filename (str): Local path; ``~`` is expanded.
        map_location (str | torch.device | callable | dict, optional): As
            for :func:`torch.load`. Defaults to None.

    Returns:
        Any: What the file holds.
    """
    return load_checkpoint_file(
        osp.expanduser(filename), map_location=map_location)


def register_safe_mmengine_loader() -> None:
    """Make :func:`load_from_local` mmengine's loader of local paths.

    Remote schemes (``http://``, ``s3://``, ...) keep mmengine's loaders,
    which rely on torch's default ``weights_only=True``.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)


def save_checkpoint_file(obj: Any, path: str, overwrite: bool = False) -> None:
    """``torch.save`` into ``path`` atomically (never half a file).

    Args:
        obj (Any): What to save.
        path (str): Target file.
        overwrite (bool): Replace an existing file. Defaults to False, which
            refuses with an error naming the file.
    """
    from mmpromptkd.compat import atomic_write
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; refusing to overwrite it')
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(buffer.getvalue(), path)


# Done on import: every entry point (tools, custom_imports=['mmpromptkd'])
# imports this module through the package.
register_safe_mmengine_loader()
