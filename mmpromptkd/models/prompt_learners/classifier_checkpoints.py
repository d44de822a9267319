"""What a stage-(a) classifier checkpoint holds (all but the frozen CLIP,
unless ``save_clip_weights``), and loading one."""
from typing import Dict, List

import torch
from mmengine.logging import MMLogger
from torch import nn

from mmpromptkd.utils import read_model_checkpoint
from mmpromptkd.utils.state_dict_check import load_state_dict_strictly
from ..utils.teacher_provenance import PromptSource, prompt_source, settle

#: Attribute name, and checkpoint key prefix, of a classifier's PromptedCLIP.
PROMPTED_CLIP_PREFIX = 'prompted_clip.'
#: Key prefix of the frozen CLIP weights in a classifier's state dict.
FROZEN_CLIP_PREFIX = PROMPTED_CLIP_PREFIX + 'clip.'


def drop_frozen_clip(module: nn.Module, state_dict: dict, prefix: str,
                     local_metadata: dict) -> None:
    """State-dict hook: leave the frozen CLIP weights out of checkpoints."""
    if module.save_clip_weights:
        return
    start = prefix + FROZEN_CLIP_PREFIX
    for key in [k for k in state_dict if k.startswith(start)]:
        del state_dict[key]


def ignore_missing_frozen_clip(module: nn.Module,
                               incompatible_keys) -> None:
    """Load hook: frozen CLIP weights come from ``clip``, not the file."""
    missing = incompatible_keys.missing_keys
    missing[:] = [k for k in missing if FROZEN_CLIP_PREFIX not in k]
    module._eval_text_cache = None


def required_keys(model: nn.Module) -> List[str]:
    """State keys a checkpoint must hold: all but the frozen CLIP."""
    return [k for k in model.state_dict(keep_vars=True)
            if not k.startswith(FROZEN_CLIP_PREFIX)]


def loadable_state(model: nn.Module) -> Dict[str, torch.Tensor]:
    """Every key a checkpoint may hold, the frozen CLIP's included."""
    state = dict(model.state_dict(keep_vars=True))
    state.update({FROZEN_CLIP_PREFIX + k: v
                  for k, v in model.clip.state_dict(keep_vars=True).items()})
    return state


def load_classifier_checkpoint(model: nn.Module, path: str) -> PromptSource:
    """Load a checkpoint (or bare state dict) of this classifier, or of a
    :class:`PromptedCLIP`; every non-CLIP key must be there, and CLIP keys
    replace the CLIP weights."""
    state, meta = read_model_checkpoint(path, type(model).__name__)
    if state and not any(k.startswith(PROMPTED_CLIP_PREFIX)
                         for k in state):
        state = {PROMPTED_CLIP_PREFIX + k: v for k, v in state.items()}
    num_clip = sum(k.startswith(FROZEN_CLIP_PREFIX) for k in state)
    source = prompt_source(model, path, meta, holds_clip_weights=num_clip > 0)
    load_state_dict_strictly(
        model, state, path, expected=loadable_state(model),
        required=required_keys(model),
        model=f'this {type(model).__name__}')
    MMLogger.get_current_instance().info(
        f'Loaded {len(state) - num_clip} prompt tensors and {num_clip} '
        f'CLIP tensors into {type(model).__name__} from {path}')
    return settle(model, source)
