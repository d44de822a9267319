"""One strict check of weights against the model they are loaded into: a
wrong checkpoint is an error naming the keys and shapes, never a warning."""
from typing import Dict, Iterable, List, Mapping, Optional

import torch
from torch import nn

_SHOWN = 8


class CheckpointMismatchError(ValueError):
    """Weights that do not fit the model; ``source`` is the file, or None
    inside ``load_state_dict`` (whose caller names it)."""

    def __init__(self, message: str, source: Optional[str] = None) -> None:
        super().__init__(message)
        self.source = source


def check_state_dict(expected: Mapping[str, torch.Tensor],
                     state_dict: Mapping, source: Optional[str],
                     required: Optional[Iterable[str]] = None,
                     model: str = 'the model',
                     required_name: str = 'keys') -> None:
    """Refuse (:class:`CheckpointMismatchError`) weights that do not fit
    ``expected``: missing or unexpected keys, values that are not tensors,
    other shapes, NaN or infinite values.

    Args:
        expected (Mapping[str, Tensor]): Every key the model can load, with
            a tensor of its shape (e.g. ``module.state_dict()``).
        state_dict (Mapping): The weights to load.
        source (str, optional): Where they come from, for the message.
        required (Iterable[str], optional): Keys that must be present (all).
        model (str): Name of the model, for the message.
        required_name (str): What the required keys are, for the message.
    """
    required = list(expected) if required is None else list(required)
    missing = [k for k in required if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    not_tensors, wrong, non_finite = [], [], []
    for key, value in state_dict.items():
        if key not in expected:
            continue
        if not isinstance(value, torch.Tensor):
            not_tensors.append(f'{key} ({type(value).__name__})')
            continue
        if tuple(value.shape) != tuple(expected[key].shape):
            wrong.append(f'{key}: checkpoint {tuple(value.shape)}, model '
                         f'{tuple(expected[key].shape)}')
        bad = int((~torch.isfinite(value)).sum()) if (
            value.is_floating_point() or value.is_complex()) else 0
        if bad:
            non_finite.append(f'{key} ({bad} of {value.numel()} values)')
    problems: Dict[str, List[str]] = {
        f'missing {required_name}': missing,
        'unexpected keys': unexpected,
        'values that are not tensors': not_tensors,
        'shape mismatch': wrong,
        'NaN or infinite values': non_finite,
    }
    found = [f'{what} {keys[:_SHOWN]}' + (
        f' and {len(keys) - _SHOWN} more' if len(keys) > _SHOWN else '')
             for what, keys in problems.items() if keys]
    if found:
        raise CheckpointMismatchError(
            f'{source or "the checkpoint"} does not fit {model}; ' +
            '; '.join(found) +
            '. Nothing was loaded. Is it a checkpoint of this config?',
            source)


def load_state_dict_strictly(module: nn.Module,
                             state_dict: Mapping[str, torch.Tensor],
                             source: Optional[str],
                             expected: Optional[Mapping] = None,
                             required: Optional[Iterable[str]] = None,
                             model: str = 'the model',
                             required_name: str = 'keys') -> None:
    """:func:`check_state_dict` (``expected``: by default the module's),
    then load, strictly unless ``required`` is given."""
    expected = module.state_dict() if expected is None else expected
    check_state_dict(expected, state_dict, source, required=required,
                     model=model, required_name=required_name)
    module.load_state_dict(state_dict, strict=required is None)
