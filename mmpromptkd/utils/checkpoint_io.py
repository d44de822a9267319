"""Safe reading and atomic writing of checkpoint files."""
import io
import os.path as osp
import pickle
import re
from typing import Any, Callable, Dict, NoReturn, Tuple, Union

import torch

from mmpromptkd.fileio import atomic_write
from .safe_globals import SAFE_GLOBALS, rebuild_history_buffers
from .torchscript_reader import (is_torchscript_archive,
                                 read_torchscript_state_dict, zip_names)

MapLocation = Union[None, str, torch.device, Callable, Dict[str, str]]
# The prefix that selects :func:`load_from_local` in mmengine's
# ``CheckpointLoader`` (``load_checkpoint(model, 'mmpromptkd://a.pth')``).
SAFE_SCHEME = 'mmpromptkd://'


def is_remote_path(path: Any) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a file."""
    return isinstance(path, str) and re.match(
        r'([A-Za-z][\w+.-]*:)?[A-Za-z][\w+.-]*://', path) is not None


def raise_remote_refused(path: str) -> NoReturn:
    """Refuse a remote checkpoint, saying how to use it instead."""
    # mmengine's loaders of URLs unpickle with ``weights_only=False``.
    raise ValueError(
        f'{path}: remote checkpoints are not loaded (the download would be '
        'unpickled without the safety checks of local files). Download it '
        'first, e.g. `curl -L -o model.pth URL`, and pass the local path; '
        'it is then read with weights_only=True.')


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file (a copy cut short
    loses the zip directory at its end)."""
    return osp.isfile(path) and any(
        name.endswith('data.pkl') for name in zip_names(path))


def _refusal_reason(error: BaseException) -> str:
    """The informative line of torch's weights-only refusal message."""
    text = str(error)
    if own := re.search(r'^refused .*$', text, re.MULTILINE):
        return own.group(0)
    if match := re.search(r'GLOBAL (\S+)', text):
        return f'it references {match.group(1)}, which is not allowed'
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def load_checkpoint_file(path: str,
                         map_location: MapLocation = 'cpu',
                         allow_unsafe: bool = False) -> Any:
    """What a checkpoint file holds, read without executing code in it.

    ``weights_only`` is passed explicitly, so
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` cannot make this unsafe; objects
    outside the allowlist raise ``pickle.UnpicklingError``.

    Args:
        path (str): A ``torch.save`` file, or a TorchScript archive (its
            state dict is returned).
        map_location (str | torch.device | dict | callable, optional): As
            for :func:`torch.load`.
        allow_unsafe (bool): Unpickle arbitrary objects: a crafted file can
            run any code.
    """
    if is_remote_path(path):
        raise_remote_refused(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    if is_torchscript_archive(path):
        # Read on the CPU; None, dicts and callables remap saved locations,
        # which an archive's tensors do not have: they stay there.
        move = isinstance(map_location, (str, torch.device))
        return {k: v.to(map_location) if move else v
                for k, v in read_torchscript_state_dict(path).items()}
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return rebuild_history_buffers(
                torch.load(
                    path,
                    map_location=map_location,
                    weights_only=not allow_unsafe))
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


def load_from_local(filename: str, map_location: MapLocation = None) -> Any:
    """The dict a local checkpoint holds, read safely.

    Args:
        filename (str): Local path, optionally after :data:`SAFE_SCHEME`.
        map_location (str | torch.device | dict | callable, optional): As
            for :func:`torch.load`.
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


def read_model_checkpoint(path: str, model: str) -> Tuple[dict, dict]:
    """The state dict and ``meta`` (empty for a bare state dict) of a
    model checkpoint file, read safely; ``model`` names it in messages."""
    if is_torchscript_archive(path):
        raise ValueError(
            f'{path} is a TorchScript archive (a CLIP weight file?), not a '
            f'{model} checkpoint; give CLIP weights as '
            'clip=dict(openai_file=...)')
    obj = load_checkpoint_file(path)  # onto the CPU, wherever it was saved
    state = obj.get('state_dict', obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict):
        raise ValueError(f'{path}: expected a state dict of {model}')
    meta = obj.get('meta', {}) if state is not obj else {}
    if not isinstance(meta, dict):
        raise ValueError(f'{path}: "meta" is a {type(meta).__name__}, not '
                         'a dict')
    return state, meta


def save_checkpoint_file(obj: Any, path: str, overwrite: bool = False) -> None:
    """``torch.save`` ``obj`` into ``path`` atomically (never half a
    file), replacing an existing file only with ``overwrite``."""
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; refusing to overwrite it')
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(buffer.getvalue(), path)
