"""Checkpoints without the frozen weights, bound to them by a fingerprint
in their ``meta``: loading onto other frozen weights is an error."""
import hashlib
from typing import Dict, Mapping, Optional

import torch
from torch import nn

from mmpromptkd.utils.state_dict_check import CheckpointMismatchError

#: Key of the fingerprint record in a checkpoint's ``meta``.
FROZEN_WEIGHTS_META = 'frozen_weights'


def frozen_parameters(model: nn.Module) -> Dict[str, torch.Tensor]:
    """Parameters of ``model`` with ``requires_grad=False``, by name."""
    return {n: p for n, p in model.named_parameters() if not p.requires_grad}


def tensors_record(tensors: Mapping[str, torch.Tensor]) -> dict:
    """``sha256``, ``tensors`` and ``elements`` of named tensors.

    SHA-256 over dtypes, shapes and bytes in sorted name order; the names
    are left out, so the same CLIP under another prefix has the same one.
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
    """:func:`tensors_record` of the frozen parameters of ``model``."""
    return tensors_record(frozen_parameters(model))


def strip_frozen_weights(model: nn.Module,
                         state_dict: Mapping[str, torch.Tensor]) -> dict:
    """``state_dict`` without the frozen parameters of ``model``."""
    frozen = frozen_parameters(model)
    return {k: v for k, v in state_dict.items() if k not in frozen}


def check_frozen_weights(model: nn.Module, record: Optional[dict],
                         source: str) -> None:
    """Refuse checkpoint ``source`` if its ``meta`` fingerprint ``record``
    (None: it holds its frozen weights) is not the model's."""
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
    """Complete ``state_dict`` (the model's keys under ``prefix``) in place
    with the model's own frozen weights, so strict loads pass."""
    for name, param in frozen_parameters(model).items():
        state_dict.setdefault(prefix + name, param.detach())
