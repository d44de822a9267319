"""Loading a PromptedCLIP's prompts from a checkpoint file."""
from typing import Dict, List, Tuple

import torch
from mmengine.logging import MMLogger
from torch import nn

from mmpromptkd.utils import read_model_checkpoint
from mmpromptkd.utils.state_dict_check import (CheckpointMismatchError,
                                               load_state_dict_strictly)
from ..utils.teacher_provenance import PromptSource, prompt_source, settle


def load_prompts(model: nn.Module, path: str) -> PromptSource:
    """Load prompts (and any ``clip.*`` weights) into a PromptedCLIP from a
    checkpoint of one, or of a teacher classifier (under ``prompted_clip.``);
    every prompt must be there, and nothing else."""
    state, meta = read_model_checkpoint(path, 'PromptedCLIP')
    state, outside = _strip_classifier_prefix(state)
    num_clip = sum(k.startswith('clip.') for k in state)
    source = prompt_source(model, path, meta, holds_clip_weights=num_clip > 0)
    expected = model.state_dict()
    prompt_keys = set(model.prompt_parameters())
    try:
        load_state_dict_strictly(
            model, state, path, required=sorted(prompt_keys),
            model=f'this PromptedCLIP (vision depth '
            f'{model.vision_prompt_depth}, text depth '
            f'{model.text_prompt_depth})', required_name='prompt keys')
    except CheckpointMismatchError as e:
        found = prompt_depths_of(state)
        ours = dict(
            vision=model.vision_prompt_depth, text=model.text_prompt_depth)
        if not outside and found != ours:
            raise CheckpointMismatchError(
                f'{e} The checkpoint has prompts of vision depth '
                f'{found["vision"]} and text depth {found["text"]}: set '
                f'vision_prompt_depth={found["vision"]} and '
                f'text_prompt_depth={found["text"]} (e.g. '
                'model.teacher.*) to load it', e.source) from e
        if not outside:
            raise
        raise CheckpointMismatchError(
            f'{e} Keys {outside} of this teacher classifier checkpoint '
            'are not part of a PromptedCLIP: use the classifier type '
            '(e.g. MaPLeClassifier) as the teacher') from e
    MMLogger.get_current_instance().info(
        f'Loaded {len(prompt_keys)} prompt tensors and {num_clip} of '
        f'{len(expected) - len(prompt_keys)} CLIP tensors from {path}')
    return settle(model, source)


def _strip_classifier_prefix(
        state: dict,
        prefix: str = 'prompted_clip.') -> Tuple[dict, List[str]]:
    """The state without ``prefix`` (other keys kept), and those others."""
    if not any(k.startswith(prefix) for k in state):
        return state, []
    stripped = {(k[len(prefix):] if k.startswith(prefix) else k): v
                for k, v in state.items()}
    return stripped, sorted(k for k in state if not k.startswith(prefix))


def prompt_depths_of(state: Dict[str, torch.Tensor]) -> Dict[str, int]:
    """``{'vision': depth, 'text': depth}`` of a PromptedCLIP state dict."""
    return {tower: (f'{tower}_ctx' in state) +
            sum(k.startswith(f'{tower}_deep_prompts.') for k in state)
            for tower in ('vision', 'text')}
