"""Convert released PromptSRC/PromptKD checkpoints for mmpromptkd.

Teacher (``teacher_model/<Dataset>/VLPromptLearner/model-best.pth.tar``)::

    python tools/model_converters/promptkd_official_to_mmpromptkd.py \
        teacher model-best.pth.tar teacher_dtd.pth --openai-clip ViT-L-14.pt

Student::

    python tools/model_converters/promptkd_official_to_mmpromptkd.py \
        student model-best.pth.tar student_dtd.pth

The official checkpoints are Dassl ``torch.save`` dicts in the reference
implementation's key layout. Loading is safe (no arbitrary unpickling). The
tool prints every key it maps and refuses keys it cannot account for. It
never overwrites an existing output file unless ``--force`` is given.
"""
import argparse
import os.path as osp
import re
import sys
from typing import Dict, List, Tuple

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '../..')))

from mmpromptkd.utils import (load_checkpoint_file,  # noqa: E402
                              save_checkpoint_file)

StateDict = Dict[str, torch.Tensor]
Mapping = List[Tuple[str, str]]

# Rebuilt from the class names (token prefix/suffix) or unused (the frozen
# zero-shot image encoder of PromptSRC's regulariser).
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
    """Check that deep prompts ``prefix.0 .. prefix.n-1`` exist; return n."""
    indices = sorted(int(k.rsplit('.', 1)[1]) for k in keys
                     if k.startswith(prefix + '.'))
    if indices != list(range(len(indices))):
        blocks = [i + 1 for i in indices]
        raise ValueError(f'{source}: deep prompts found in blocks {blocks}; '
                         'expected blocks 1, 2, ... without gaps')
    return len(indices)


def _map_vision(key: str, prefix: str, source: str) -> str:
    """Map an ``image_encoder.*`` key of the reference onto ours."""
    rest = key[len('image_encoder.'):]
    if rest == 'VPT':
        return f'{prefix}vision_ctx'
    match = _SHALLOW.match(rest)
    if match and match.group(1) == '':
        return _deep_prompt_key(match, f'{prefix}vision_deep_prompts',
                                source)
    return f'{prefix}clip.visual.{rest}'


def convert_official_teacher(checkpoint: dict, openai_state_dict: StateDict,
                             source: str) -> Tuple[dict, Mapping]:
    """Convert a released teacher (``VLPromptLearner/model-best.pth.tar``).

    Args:
        checkpoint (dict): The loaded Dassl checkpoint.
        openai_state_dict (dict[str, Tensor]): Weights of the OpenAI CLIP
            file the teacher was trained from; it supplies the token
            embedding, which the teacher checkpoint does not store.
        source (str): File name for messages.

    Returns:
        tuple[dict, list]: A checkpoint loadable by
        ``PromptedCLIP(checkpoint=...)`` (``state_dict`` plus ``meta`` with
        the prompt depths and lengths), and the list of (old, new) key pairs.
    """
    state = _state_dict_of(checkpoint, source)
    if 'prompt_learner.ctx' not in state:
        raise ValueError(f'{source}: no prompt_learner.ctx; this is not a '
                         'PromptSRC/PromptKD teacher checkpoint (a student '
                         'checkpoint needs convert_official_student)')
    converted: StateDict = {}
    mapping: Mapping = []
    unknown = []
    for key, value in state.items():
        if _TEACHER_IGNORED.match(key):
            continue
        if key == 'prompt_learner.ctx':
            new = 'text_ctx'
        elif key == 'logit_scale':
            new = 'clip.logit_scale'
        elif key.startswith('image_encoder.'):
            new = _map_vision(key, '', source)
        elif _TEXT_KEYS.match(key):
            rest = key[len('text_encoder.'):]
            match = _SHALLOW.match(rest)
            new = (_deep_prompt_key(match, 'text_deep_prompts', source)
                   if match else f'clip.{rest}')
        else:
            unknown.append(key)
            continue
        converted[new] = value
        mapping.append((key, new))
    if unknown:
        raise ValueError(f'{source}: keys the converter cannot account for: '
                         f'{unknown}')
    if 'token_embedding.weight' not in openai_state_dict:
        raise ValueError('the OpenAI CLIP weights have no '
                         'token_embedding.weight')
    converted['clip.token_embedding.weight'] = \
        openai_state_dict['token_embedding.weight']
    mapping.append(('<openai>token_embedding.weight',
                    'clip.token_embedding.weight'))
    keys = list(converted)
    meta = dict(
        kind='PromptedCLIP',
        source=source,
        vision_prompt_depth=(1 + _check_contiguous(
            keys, 'vision_deep_prompts', source)
                             if 'vision_ctx' in converted else 0),
        vision_prompt_length=(converted['vision_ctx'].shape[0]
                              if 'vision_ctx' in converted else 0),
        text_prompt_depth=1 + _check_contiguous(keys, 'text_deep_prompts',
                                                source),
        text_prompt_length=converted['text_ctx'].shape[0])
    return dict(state_dict=converted, meta=meta), mapping


def convert_official_student(checkpoint: dict,
                             source: str) -> Tuple[dict, Mapping]:
    """Convert a released PromptKD student checkpoint.

    The projector ``VPT_image_trans.conv1`` is a sequence of 1x1
    convolutions (0: conv, 1: BatchNorm, 2: ReLU, 3: conv) on a B x C x 1 x 1
    view; its conv weights become the linear weights of
    :class:`FeatureProjector` (``fc1``, ``bn``, ``fc2``).

    Args:
        checkpoint (dict): The loaded Dassl checkpoint.
        source (str): File name for messages.

    Returns:
        tuple[dict, list]: A checkpoint loadable into
        :class:`PromptKDDistiller` (``load_from``), without stored text
        features (the teacher computes them), and the (old, new) key pairs.
    """
    state = _state_dict_of(checkpoint, source)
    if 'prompt_learner.ctx' in state:
        raise ValueError(f'{source}: this is a teacher checkpoint; use '
                         'convert_official_teacher')
    projector = {'0': 'fc1', '1': 'bn', '3': 'fc2'}
    converted: StateDict = {}
    mapping: Mapping = []
    unknown = []
    for key, value in state.items():
        match = re.match(r'^VPT_image_trans\.conv1\.(\d)\.(\w+)$', key)
        if match and match.group(1) in projector:
            new = f'projector.{projector[match.group(1)]}.{match.group(2)}'
            if value.dim() == 4:
                if value.shape[2:] != (1, 1):
                    raise ValueError(f'{source}: {key} has shape '
                                     f'{tuple(value.shape)}, expected a 1x1 '
                                     'convolution')
                value = value.flatten(1)
        elif key == 'logit_scale':
            new = 'student.clip.logit_scale'
        elif key.startswith('image_encoder.'):
            new = _map_vision(key, 'student.', source)
        else:
            unknown.append(key)
            continue
        converted[new] = value
        mapping.append((key, new))
    if unknown:
        raise ValueError(f'{source}: keys the converter cannot account for: '
                         f'{unknown}')
    if 'projector.fc1.weight' not in converted:
        raise ValueError(f'{source}: no VPT_image_trans projector; this is '
                         'not a PromptKD student checkpoint')
    meta = dict(kind='PromptKDDistiller', source=source)
    return dict(state_dict=converted, meta=meta), mapping


def _state_dict_of(checkpoint: dict, source: str) -> StateDict:
    state = checkpoint.get('state_dict') if isinstance(checkpoint,
                                                       dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'{source}: expected a Dassl checkpoint with a '
                         '"state_dict" entry')
    return state


def parse_args(argv=None) -> argparse.Namespace:
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
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
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
        meta = converted['meta']
        # The official code builds every teacher with depth 9 and loads it
        # non-strictly; our configs must name the depth the file has.
        print('prompt depths found: '
              f'vision {meta["vision_prompt_depth"]}, text '
              f'{meta["text_prompt_depth"]}; the teacher config needs '
              f'model.teacher.vision_prompt_depth='
              f'{meta["vision_prompt_depth"]} '
              f'model.teacher.text_prompt_depth={meta["text_prompt_depth"]}')


if __name__ == '__main__':
    main()
