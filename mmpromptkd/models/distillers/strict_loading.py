"""Strict loading of distiller checkpoints."""
import torch
from torch import nn

from mmpromptkd.utils.state_dict_check import (CheckpointMismatchError,
                                               check_state_dict)
from ..utils import fill_frozen_weights
from .class_text_table import decode_class_names


#: Buffers of JSON bytes, whose length is the stored one.
VARIABLE_LENGTH = ('class_names_utf8', 'text_provenance_utf8')


def prepare_distiller_load(model: nn.Module, state_dict: dict, prefix: str,
                           *load_args) -> None:
    """Load pre-hook: check a distiller's state dict and make ``model``
    ready to load it (mmengine's ``strict=False`` would only warn)."""
    if any(k.startswith(prefix + 'prompted_clip.') for k in state_dict):
        raise CheckpointMismatchError(
            'the checkpoint is a stage-(a) teacher checkpoint (its keys '
            "start with 'prompted_clip.'), not one of a distiller: give "
            'it as the teacher, --cfg-options '
            'model.teacher.checkpoint=PATH. Nothing was loaded.')
    own = {prefix + k: v for k, v in model.state_dict().items()}
    required = [prefix + name for name in model.trainable_parameters()]
    if model.projector is not None:
        required += [f'{prefix}projector.{name}'
                     for name, _ in model.projector.named_buffers()]
    names = state_dict.get(prefix + 'class_names_utf8')
    features = state_dict.get(prefix + 'text_features')
    if features is not None or names is not None:
        # Stored features come with their class names, one row each.
        required += [prefix + 'text_features', prefix + 'class_names_utf8']
        try:
            count = len(decode_class_names(names))
        except CheckpointMismatchError as e:
            raise CheckpointMismatchError(
                f'the checkpoint: {e}. Nothing was loaded.') from e
        width = own[prefix + 'text_features'].shape[1]
        if width == 0 and features is not None:
            # No teacher and no projector (a student with its own text
            # features, exported): the stored teacher features' width.
            width = features.shape[1]
        own[prefix + 'text_features'] = torch.empty(count, width)
    # Variable-length JSON bytes: the stored length is the right one.
    for name in VARIABLE_LENGTH:
        if state_dict.get(prefix + name) is not None:
            own[prefix + name] = state_dict[prefix + name]
    check_state_dict(
        own, {k: v for k, v in state_dict.items() if k.startswith(prefix)},
        None, required=required, model=f'this {type(model).__name__}')
    for name in ('text_features', ) + VARIABLE_LENGTH:
        stored = state_dict.get(prefix + name)
        buffer = getattr(model, name)
        if stored is not None and stored.shape != buffer.shape:
            setattr(model, name, buffer.new_empty(stored.shape))
    # Training checkpoints leave out the frozen weights: they come from
    # the config's weight source (the checkpoint's fingerprint of them
    # is checked by the loaders that read its meta).
    fill_frozen_weights(model, state_dict, prefix)
