"""Checkpoints without the frozen weights, bound to them by a fingerprint.

The frozen CLIP weights come from the config's weight source and are left
out of training checkpoints; their fingerprint in the checkpoint's ``meta``
makes loading onto other frozen weights an error, never a silent mix.
"""
import hashlib
from typing import Dict, Mapping, Optional

import torch
from torch import nn

from mmpromptkd.utils.state_dict_check import CheckpointMismatchError

__all__ = [
    'FROZEN_WEIGHTS_META', 'check_frozen_weights', 'fill_frozen_weights',
    'frozen_parameters', 'frozen_weights_record', 'strip_frozen_weights',
    'tensors_record'
]

#: Key of the fingerprint record in a checkpoint's ``meta``.
FROZEN_WEIGHTS_META = 'frozen_weights'


def frozen_parameters(model: nn.Module) -> Dict[str, torch.Tensor]:
    """Parameters of ``model`` with ``requires_grad=False``, by name.

    Args:
        model (nn.Module): The model (unwrapped).

    Returns:
        dict[str, Tensor]: The parameters.
    """
    return {n: p for n, p in model.named_parameters() if not p.requires_grad}


def tensors_record(tensors: Mapping[str, torch.Tensor]) -> dict:
    """A fingerprint of named tensors.

    SHA-256 over dtypes, shapes and bytes in sorted name order; the names
    are left out, so the same CLIP under another prefix has the same one.

    Args:
        tensors (Mapping[str, Tensor]): The tensors, by name.

    Returns:
        dict: ``sha256`` (hex), ``tensors`` and ``elements``.
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to('cpu').contiguous()
        digest.update(f'{tensor.dtype}{tuple(tensor.shape)};'.encode())
        # Flattened: a 0-d tensor cannot be viewed as bytes.
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    return dict(sha256=digest.hexdigest(),
                tensors=len(tensors),
                elements=sum(t.numel() for t in tensors.values()))


def frozen_weights_record(model: nn.Module) -> dict:
    """:func:`tensors_record` of the frozen parameters of ``model``.

    Args:
        model (nn.Module): The model (unwrapped).

    Returns:
        dict: ``sha256`` (hex), ``tensors`` and ``elements``.
    """
    return tensors_record(frozen_parameters(model))


def strip_frozen_weights(model: nn.Module,
                         state_dict: Mapping[str, torch.Tensor]) -> dict:
    """``state_dict`` without the frozen parameters of ``model``.

    Args:
        model (nn.Module): The model the state dict is of (unwrapped).
        state_dict (Mapping[str, Tensor]): Its state dict.

    Returns:
        dict: The other entries (buffers stay).
    """
    frozen = frozen_parameters(model)
    return {k: v for k, v in state_dict.items() if k not in frozen}


def check_frozen_weights(model: nn.Module, record: Optional[dict],
                         source: str) -> None:
    """Refuse a checkpoint trained on other frozen weights than the model's.

    Args:
        model (nn.Module): The model about to load it (unwrapped).
        record (dict, optional): The checkpoint's ``meta`` record; None for
            checkpoints that hold their frozen weights (nothing to check).
        source (str): The checkpoint file, for the message.

    Raises:
        CheckpointMismatchError: If the record is malformed or the
            fingerprints differ; the message names both.
    """
    if record is None:
        return
    if not (isinstance(record, dict)
            and isinstance(record.get('sha256'), str)):
        raise CheckpointMismatchError(
            f'{source}: meta.{FROZEN_WEIGHTS_META} is not a fingerprint '
            f'record (a dict with "sha256"), got {record!r}', source)
    own = frozen_weights_record(model)
    if own['sha256'] != record['sha256']:
        raise CheckpointMismatchError(
            f'{source} was trained on other frozen weights than this '
            f'model was built with: the checkpoint records '
            f'{record.get("tensors")} frozen tensors with SHA-256 '
            f'{record["sha256"][:16]}..., the model has {own["tensors"]} '
            f'with {own["sha256"][:16]}.... The frozen weights are not in '
            'the checkpoint; build the model with the CLIP weights it was '
            "trained with (the config's clip checkpoint / model_name).",
            source)


def fill_frozen_weights(model: nn.Module, state_dict: dict,
                        prefix: str = '') -> None:
    """Complete a checkpoint without frozen weights with the model's own.

    Called at the start of a model's ``_load_from_state_dict``, so strict
    loads pass and the frozen weights keep the config's values.

    Args:
        model (nn.Module): The model being loaded.
        state_dict (dict): The state dict being loaded; modified in place.
        prefix (str): The model's key prefix in it. Defaults to ''.
    """
    for name, param in frozen_parameters(model).items():
        state_dict.setdefault(prefix + name, param.detach())
