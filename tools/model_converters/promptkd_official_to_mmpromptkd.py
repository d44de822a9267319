"""Convert released PromptSRC/PromptKD checkpoints for mmpromptkd.

Dassl checkpoints are read safely; unknown keys are refused.
"""
import argparse
import os.path as osp
import re
import sys
from typing import Callable, Dict, List, Tuple

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '../..')))

from mmpromptkd.utils import (load_checkpoint_file,  # noqa: E402
                              save_checkpoint_file)

StateDict = Dict[str, torch.Tensor]
Mapping = List[Tuple[str, str]]

# Rebuilt from the class names or unused (PromptSRC's regulariser).
_TEACHER_IGNORED = re.compile(
    r'^prompt_learner\.(token_prefix2?|token_suffix2?|ZS_image_encoder\..*)$')
_TEXT_KEYS = re.compile(
    r'^text_encoder\.(transformer\..*|positional_embedding|ln_final\..*|'
    r'text_projection)$')
_SHALLOW = re.compile(r'^(.*)transformer\.resblocks\.(\d+)\.VPT_shallow$')


def _deep_prompt_key(match: 're.Match', target: str, source: str) -> str:
    block = int(match.group(2))
    if block < 1:
        raise ValueError(f'{source}: {match.group(0)} sits in block 0, which '
                         'takes the first-layer prompt instead')
    return f'{target}.{block - 1}'


def _check_contiguous(keys: List[str], prefix: str, source: str) -> int:
    """The number n of deep prompts ``prefix.0 .. prefix.n-1``, gapless."""
    indices = sorted(int(k.rsplit('.', 1)[1]) for k in keys
                     if k.startswith(prefix + '.'))
    if indices != list(range(len(indices))):
        blocks = [i + 1 for i in indices]
        raise ValueError(f'{source}: deep prompts found in blocks {blocks}; '
                         'expected blocks 1, 2, ... without gaps')
    return len(indices)


def _map_vision(key: str, prefix: str, source: str) -> str:
    rest = key[len('image_encoder.'):]
    if rest == 'VPT':
        return f'{prefix}vision_ctx'
    match = _SHALLOW.match(rest)
    if match and match.group(1) == '':
        return _deep_prompt_key(match, f'{prefix}vision_deep_prompts',
                                source)
    return f'{prefix}clip.visual.{rest}'


def _state_dict_of(checkpoint: dict, source: str) -> StateDict:
    state = checkpoint.get('state_dict') if isinstance(checkpoint,
                                                       dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'{source}: expected a Dassl checkpoint with a '
                         '"state_dict" entry')
    return state


def _rename(state: StateDict, rename: Callable,
            source: str) -> Tuple[StateDict, Mapping]:
    """Rename by ``rename(key, value)``: (key, value), () to skip, None."""
    converted: StateDict = {}
    mapping: Mapping = []
    unknown = []
    for key, value in state.items():
        renamed = rename(key, value)
        if renamed is None:
            unknown.append(key)
        elif renamed:
            converted[renamed[0]] = renamed[1]
            mapping.append((key, renamed[0]))
    if unknown:
        raise ValueError(f'{source}: keys the converter cannot account for: '
                         f'{unknown}')
    return converted, mapping


def convert_official_teacher(checkpoint: dict, openai_state_dict: StateDict,
                             source: str) -> Tuple[dict, Mapping]:
    """Convert a released teacher (``VLPromptLearner/model-best.pth.tar``).

    Args:
        checkpoint (dict): The loaded Dassl checkpoint.
        openai_state_dict (dict): The OpenAI CLIP weights (token embedding).
        source (str): File name for messages.

    Returns:
        tuple[dict, list]: A ``PromptedCLIP`` checkpoint, (old, new) keys.
    """
    state = _state_dict_of(checkpoint, source)
    if 'prompt_learner.ctx' not in state:
        raise ValueError(f'{source}: no prompt_learner.ctx; this is not a '
                         'PromptSRC/PromptKD teacher checkpoint (a student '
                         'checkpoint needs convert_official_student)')

    def rename(key, value):
        if _TEACHER_IGNORED.match(key):
            return ()
        if key == 'prompt_learner.ctx':
            return 'text_ctx', value
        if key == 'logit_scale':
            return 'clip.logit_scale', value
        if key.startswith('image_encoder.'):
            return _map_vision(key, '', source), value
        if _TEXT_KEYS.match(key):
            rest = key[len('text_encoder.'):]
            match = _SHALLOW.match(rest)
            return (_deep_prompt_key(match, 'text_deep_prompts', source)
                    if match else f'clip.{rest}'), value
        return None

    converted, mapping = _rename(state, rename, source)
    if 'token_embedding.weight' not in openai_state_dict:
        raise ValueError('the OpenAI CLIP weights have no '
                         'token_embedding.weight')
    converted['clip.token_embedding.weight'] = \
        openai_state_dict['token_embedding.weight']
    mapping.append(('<openai>token_embedding.weight',
                    'clip.token_embedding.weight'))
    keys = list(converted)
    vision = converted.get('vision_ctx')
    meta = dict(
        kind='PromptedCLIP',
        source=source,
        vision_prompt_depth=0 if vision is None else 1 + _check_contiguous(
            keys, 'vision_deep_prompts', source),
        vision_prompt_length=0 if vision is None else vision.shape[0],
        text_prompt_depth=1 + _check_contiguous(keys, 'text_deep_prompts',
                                                source),
        text_prompt_length=converted['text_ctx'].shape[0])
    return dict(state_dict=converted, meta=meta), mapping


def convert_official_student(checkpoint: dict,
                             source: str) -> Tuple[dict, Mapping]:
    """Convert a released PromptKD student checkpoint; its 1x1-convolution
    projector becomes a :class:`FeatureProjector`.

    Returns:
        tuple[dict, list]: A ``PromptKDDistiller`` checkpoint, (old, new) keys.
    """
    state = _state_dict_of(checkpoint, source)
    if 'prompt_learner.ctx' in state:
        raise ValueError(f'{source}: this is a teacher checkpoint; use '
                         'convert_official_teacher')
    projector = {'0': 'fc1', '1': 'bn', '3': 'fc2'}

    def rename(key, value):
        match = re.match(r'^VPT_image_trans\.conv1\.(\d)\.(\w+)$', key)
        if match and match.group(1) in projector:
            if value.dim() == 4:
                if value.shape[2:] != (1, 1):
                    raise ValueError(f'{source}: {key} has shape '
                                     f'{tuple(value.shape)}, expected a 1x1 '
                                     'convolution')
                value = value.flatten(1)
            return (f'projector.{projector[match.group(1)]}.'
                    f'{match.group(2)}'), value
        if key == 'logit_scale':
            return 'student.clip.logit_scale', value
        if key.startswith('image_encoder.'):
            return _map_vision(key, 'student.', source), value
        return None

    converted, mapping = _rename(state, rename, source)
    if 'projector.fc1.weight' not in converted:
        raise ValueError(f'{source}: no VPT_image_trans projector; this is '
                         'not a PromptKD student checkpoint')
    meta = dict(kind='PromptKDDistiller', source=source)
    return dict(state_dict=converted, meta=meta), mapping


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('kind', choices=['teacher', 'student'])
    parser.add_argument('src', help='official checkpoint file')
    parser.add_argument('dst', help='output file')
    parser.add_argument(
        '--openai-clip',
        help='OpenAI CLIP file the teacher was trained from (ViT-L-14.pt); '
        'it supplies the token embedding')
    parser.add_argument('--force', action='store_true',
                        help='overwrite an existing output file')
    parser.add_argument('--quiet', action='store_true',
                        help='do not print the key mapping')
    args = parser.parse_args(argv)
    if osp.exists(args.dst) and not args.force:
        sys.exit(f'{args.dst} exists; pass --force to overwrite it')
    checkpoint = load_checkpoint_file(args.src)
    if args.kind == 'teacher':
        if not args.openai_clip:
            sys.exit('--openai-clip is required for a teacher: the token '
                     'embedding comes from the OpenAI CLIP file')
        openai_state = load_checkpoint_file(args.openai_clip)
        converted, mapping = convert_official_teacher(
            checkpoint, openai_state, args.src)
    else:
        converted, mapping = convert_official_student(checkpoint, args.src)
    if not args.quiet:
        for old, new in mapping:
            print(f'{old} -> {new}')
    save_checkpoint_file(converted, args.dst, overwrite=args.force)
    print(f'converted {len(mapping)} tensors into {args.dst}; '
          f'meta: {converted["meta"]}')
    if args.kind == 'teacher':
        # The official code builds every teacher with depth 9 and loads it
        # non-strictly; our configs must name the depth the file has.
        vision, text = (converted['meta'][f'{k}_prompt_depth']
                        for k in ('vision', 'text'))
        print(f'prompt depths found: vision {vision}, text {text}; the '
              f'teacher config needs model.teacher.vision_prompt_depth='
              f'{vision} model.teacher.text_prompt_depth={text}')


if __name__ == '__main__':
    main()
