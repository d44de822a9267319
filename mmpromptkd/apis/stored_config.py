"""Checks of model configs read from files, before anything is built (what
is refused and why: docs/guarantees.md, stored configs)."""
import copy
import dataclasses
import functools
import inspect
import math
from typing import Any, Dict, FrozenSet, Iterator, NoReturn, Optional, Tuple

import torch
from open_clip.model import CLIPTextCfg, CLIPVisionCfg


Shapes = Dict[str, Tuple[int, ...]]
# mmpretrain components a stored model config of ours may name.
_EXTRA_TYPES = frozenset({'ClsDataPreprocessor'})
_SCOPE = 'mmpromptkd'
MAX_NODES = 10000
MAX_DEPTH = 32
# Keys naming files or initialisation, which a stored config leaves unset.
_UNSET_KEYS = ('checkpoint', 'pretrained', 'init_cfg')
_CLIP_KEYS = frozenset({'model_cfg', 'quick_gelu', 'precision'})
_MODEL_CFG_KEYS = frozenset({'embed_dim', 'vision_cfg', 'text_cfg',
                             'quick_gelu', 'custom_text', 'init_logit_bias'})
# No Hugging Face models or tokenizers, which name hubs and folders.
_TOWER_KEYS = {
    'vision_cfg': frozenset(f.name for f in dataclasses.fields(CLIPVisionCfg)),
    'text_cfg': frozenset(f.name for f in dataclasses.fields(CLIPTextCfg)
                          if not f.name.startswith(('hf_', 'tokenizer_'))),
}
MAX_IMAGE_SIZE = 4096
# The smallest plain text tower: what an image-only architecture declares.
_STAND_IN_TEXT = dict(context_length=8, vocab_size=64, width=64, heads=1,
                      layers=1)
# Parameters of a declared tower that the file does not store: above the
# text tower of ViT-L/14 (123.7 M), far below what would exhaust memory.
MAX_ABSENT_TOWER = 200 * 10**6
# Blocks of such a tower: above any of open_clip's text towers (32).
MAX_ABSENT_LAYERS = 64


def image_only_architecture(architecture: dict) -> dict:
    """A copy of a CLIP ``architecture`` whose text tower is a small
    stand-in (a student drops its text tower after building)."""
    model_cfg = copy.deepcopy(dict(architecture['model_cfg']))
    model_cfg['text_cfg'] = dict(_STAND_IN_TEXT)
    return dict(architecture, model_cfg=model_cfg)


def _refuse(source: str, message: str) -> NoReturn:
    """Raise the refusal of a stored config."""
    raise ValueError(f'{source}: {message}. Nothing was built.')


def check_stored_config(cfg: Any,
                        source: str,
                        state_shapes: Optional[Shapes] = None) -> None:
    """Refuse (ValueError) a stored model config that is not a plain one
    of ours.

    Args:
        cfg (Any): The config read from a file (dicts, lists and values).
        source (str): Where it came from, for messages (file and key).
        state_shapes (dict[str, Sequence[int]], optional): Shapes of the
            stored tensors by key; declared architectures must match them.
    """
    prompts, projectors = [], []
    for node, where in _containers(cfg, source):
        if not isinstance(node, dict):
            continue
        _check_keys(node, where, source)
        if isinstance(node.get('clip'), dict):
            # A text-only PromptedCLIP builds no image tower (a stand-in).
            _check_clip(node['clip'], f'{where}.clip', source, state_shapes,
                        node.get('image_tower', True) is not False)
            prompts.append((_check_prompts, node, where))
        if node.get('type') in ('FeatureProjector',
                                f'{_SCOPE}.FeatureProjector'):
            projectors.append((_check_projector, node, where))
    # After the CLIPs they run with (which tell the most): prompts first.
    for check, node, where in prompts + projectors:
        if state_shapes is not None:
            check(node, where, source, state_shapes)


def _containers(cfg: Any, source: str) -> Iterator[Tuple[Any, str]]:
    """Every dict, list and tuple of ``cfg`` with its key path, once."""
    seen = {}
    stack = [(cfg, 'model', 0)]
    while stack:
        node, where, depth = stack.pop()
        if not isinstance(node, (dict, list, tuple)):
            continue
        if id(node) in seen:
            _refuse(source, f'{where} is the same object as {seen[id(node)]}'
                    ' (aliased or cyclic); a stored config is a tree')
        seen[id(node)] = where
        if len(seen) > MAX_NODES:
            _refuse(source, f'more than {MAX_NODES} containers (at {where})')
        if depth > MAX_DEPTH:
            _refuse(source, f'{where} is nested deeper than {MAX_DEPTH} '
                    'levels')
        yield node, where
        is_dict = isinstance(node, dict)
        for key, value in node.items() if is_dict else enumerate(node):
            if is_dict and not isinstance(key, str):
                _refuse(source, f'{where} has the key {key!r}; config keys '
                        'are strings')
            path = f'{where}.{key}' if is_dict else f'{where}[{key}]'
            stack.append((value, path, depth + 1))


def _check_keys(node: dict, where: str, source: str) -> None:
    """The type, scope, unset keys and arguments of one config dict."""
    from mmpromptkd.registry import MODELS
    for key in _UNSET_KEYS:
        if node.get(key) is not None and not where.endswith('.clip'):
            _refuse(source, f'{where}.{key} is {node[key]!r}; a stored '
                    'config names no file and no initialisation (the file '
                    'holds every weight)')
    if node.get('_scope_', _SCOPE) != _SCOPE:
        _refuse(source, f'{where}._scope_ is {node["_scope_"]!r}; a stored '
                f'config builds in the {_SCOPE!r} scope only')
    if 'type' not in node:
        return
    name = node['type']
    if isinstance(name, str) and name.startswith(_SCOPE + '.'):
        name = name[len(_SCOPE) + 1:]
    if not isinstance(name, str) or (name not in MODELS.module_dict
                                     and name not in _EXTRA_TYPES):
        allowed = sorted(set(MODELS.module_dict) | _EXTRA_TYPES)
        _refuse(source, f'{where}.type is {node["type"]!r}, which is not a '
                'model of mmpromptkd; a stored config may only name these '
                f'types: {allowed}')
    parameters = inspect.signature(MODELS.get(name)).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    for key in (k for k in node if k not in parameters
                and k not in ('type', '_scope_')):
        _refuse(source, f'{where}.{key}: {name} accepts '
                f'{sorted(parameters)}, not {key!r}')


def _check_clip(clip: dict, where: str, source: str,
                state_shapes: Optional[Shapes], image_tower: bool) -> None:
    """Check a stored ``clip``: an architecture, of the stored weights."""
    for key in (k for k in clip if k not in _CLIP_KEYS):
        _refuse(source, f'{where}.{key}: a stored CLIP is an architecture '
                f'({sorted(_CLIP_KEYS)}), with no weight file, name or cache')
    model_cfg = clip.get('model_cfg')
    if not isinstance(model_cfg, dict):
        _refuse(source, f'{where}.model_cfg must be a dict')
    # model.student.clip holds the weights under student.clip.
    prefix = where.split('.', 1)[1] + '.'
    where = f'{where}.model_cfg'
    for key in (k for k in model_cfg if k not in _MODEL_CFG_KEYS):
        _refuse(source, f'{where}.{key} is not one of '
                f'{sorted(_MODEL_CFG_KEYS)}')
    for part, keys in _TOWER_KEYS.items():
        tower = model_cfg.get(part, {})
        if not isinstance(tower, dict):
            _refuse(source, f'{where}.{part} must be a dict')
        for key in (k for k in tower if k not in keys):
            _refuse(source, f'{where}.{part}.{key}: a stored CLIP takes '
                    "open_clip's towers only (no Hugging Face models or "
                    'tokenizers, which name hubs or folders)')
    vision = model_cfg.get('vision_cfg', {})
    timm_tower = any(k.startswith('timm_') for k in vision)
    if timm_tower:
        _check_timm_tower(vision, f'{where}.vision_cfg', source)
    if state_shapes is None:
        return
    # First what decides the cost of building at all.
    if image_tower and not timm_tower:
        if isinstance(vision.get('layers'), (list, tuple)):
            _check_resnet(vision, f'{where}.vision_cfg', source, prefix,
                          state_shapes)
        else:
            _check_tower(vision, 'vision_cfg', f'{where}.vision_cfg', source,
                         prefix, state_shapes)
    _check_tower(model_cfg.get('text_cfg', {}), 'text_cfg',
                 f'{where}.text_cfg', source, prefix, state_shapes)
    # Then every declared shape, built on the meta device.
    _check_declared_weights(clip, where, source, prefix, state_shapes,
                            image_tower)


@functools.lru_cache(maxsize=None)
def _open_clip_timm_towers() -> FrozenSet[str]:
    """The timm image towers of open_clip's own model configs."""
    import open_clip
    return frozenset(
        open_clip.get_model_config(n)['vision_cfg'].get('timm_model_name')
        for n in open_clip.list_models()) - {None}


def _check_timm_tower(tower: dict, where: str, source: str) -> None:
    """A known timm tower, without weights to fetch, of a bounded size."""
    import timm
    if tower.get('timm_model_pretrained'):
        _refuse(source, f'{where}.timm_model_pretrained would download '
                'weights')
    name = tower.get('timm_model_name')
    # One of open_clip's timm towers, or one this package registers.
    if not isinstance(name, str) or (
            name not in _open_clip_timm_towers() and not (
                timm.is_model(name) and timm.models.model_entrypoint(
                    name).__module__.startswith('mmpromptkd.'))):
        _refuse(source, f'{where}.timm_model_name is {name!r}, not a timm '
                "tower of one of open_clip's model configs (or the "
                "synthetic demo's)")
    image = tower.get('image_size', 224)
    if type(image) is not int or not 1 <= image <= MAX_IMAGE_SIZE:
        _refuse(source, f'{where}.image_size must be an integer in [1, '
                f'{MAX_IMAGE_SIZE}], got {image!r}')


def _check_declared_weights(clip: dict, where: str, source: str,
                            prefix: str, shapes: Shapes,
                            image_tower: bool) -> None:
    """Every weight a declared CLIP has against the stored ones."""
    from mmpromptkd.models.clip.clip_builder import (_build_open_clip_model,
                                                     text_only_source)
    architecture = clip if image_tower else text_only_source(clip)
    try:
        with torch.device('meta'):
            model = _build_open_clip_model(
                copy.deepcopy(dict(architecture['model_cfg'])),
                bool(clip.get('quick_gelu', False)))
    except Exception as e:  # noqa: B902 (any failure: a named refusal)
        _refuse(source, f'{where} does not build: {type(e).__name__}: {e}')
    declared = {f'{prefix}{k}': tuple(v.shape)
                for k, v in model.state_dict().items()}
    stored = {k: tuple(v) for k, v in shapes.items() if k.startswith(prefix)}
    visual = f'{prefix}visual.'
    differing = sorted(k for k in declared.keys() | stored.keys()
                       if declared.get(k) != stored.get(k) and (
                           k in stored or (image_tower
                                           and k.startswith(visual))))
    if differing:
        part = 'image-tower' if differing[0].startswith(visual) \
            else 'text-tower'
        first = [(k, declared.get(k), stored.get(k)) for k in differing[:3]]
        _refuse(source, f'{where} declares other {part} weights than the '
                'file stores (first differences, as (key, declared, '
                f'stored): {first}): the architecture is not that of the '
                'stored weights')
    absent = sum(t.numel() for t in model.parameters()) + sum(
        t.numel() for t in model.buffers()) - sum(
            math.prod(declared[k]) for k in declared.keys() & stored.keys())
    if absent > MAX_ABSENT_TOWER:
        _refuse(source, f'{where} declares {absent:,} elements that the file '
                f'does not store (at most {MAX_ABSENT_TOWER:,}: a dropped '
                'tower and buffers)')
    # A timm trunk with a fixed patch grid must declare its image size (a
    # CNN has no grid; a dynamic or lax one takes any size).
    visual = model.visual if image_tower else None
    embed = getattr(getattr(visual, 'trunk', None), 'patch_embed', None)
    size = getattr(embed, 'img_size', None)
    if size is not None and getattr(embed, 'strict_img_size', True) and \
            not getattr(visual.trunk, 'dynamic_img_size', False) and \
            tuple(visual.image_size) != tuple(size):
        _refuse(source, f'{where}.vision_cfg.image_size is '
                f'{tuple(visual.image_size)[0]}, but its timm trunk takes '
                f'{tuple(size)} images (the patch grid of its stored '
                'positional embedding)')


def _check_resnet(tower: dict, where: str, source: str, prefix: str,
                  shapes: Shapes) -> None:
    """A declared ModifiedResNet's blocks per stage against the stored."""
    layers = tower['layers']
    if len(layers) != 4 or not all(type(n) is int and n >= 1
                                   for n in layers):
        _refuse(source, f'{where}.layers must be four positive block counts '
                f'(a ModifiedResNet), got {layers!r}')
    stored = [_stored_blocks(shapes, f'{prefix}visual.layer{stage}.')
              for stage in range(1, 5)]
    if list(layers) != stored:
        _refuse(source, f'{where}.layers declares {list(layers)} blocks per '
                f'stage, but the file stores {stored}: the architecture is '
                'not that of the stored weights')


def _check_prompts(node: dict, where: str, source: str,
                   shapes: Shapes) -> None:
    """Declared prompt lengths and depths against the stored prompts."""
    prefix = where.split('.', 1)[1] + '.'
    for tower in ('vision', 'text'):
        depth = node.get(f'{tower}_prompt_depth', 0)
        length = node.get(f'{tower}_prompt_length', 4)
        if not depth:
            continue
        first = shapes.get(f'{prefix}{tower}_ctx')
        deep = f'{prefix}{tower}_deep_prompts.'
        stored_depth = len([k for k in shapes if k.startswith(deep)]) + (
            first is not None)
        if stored_depth != depth or first is None or \
                tuple(first)[:1] != (length, ):
            _refuse(source, f'{where}.{tower}_prompt_length is {length!r} '
                    f'and {tower}_prompt_depth {depth!r}, but the file '
                    f'stores {stored_depth} {tower} prompts, the first of '
                    f'shape {None if first is None else tuple(first)}')


def _check_projector(node: dict, where: str, source: str,
                     shapes: Shapes) -> None:
    """A declared FeatureProjector's widths against its stored layers."""
    prefix = where.split('.', 1)[1] + '.'
    fc1 = tuple(shapes.get(f'{prefix}fc1.weight', ()))
    fc2 = tuple(shapes.get(f'{prefix}fc2.weight', ()))
    out = node.get('out_channels')
    declared = dict(out_channels=(out, fc2[:1]),
                    hidden_channels=(node.get('hidden_channels', out),
                                     fc1[:1]),
                    in_channels=(node.get('in_channels'), fc1[1:2]))
    for key, (value, stored) in declared.items():
        if (value is not None or key != 'in_channels') and \
                stored != (value, ):
            _refuse(source, f'{where}.{key} is {value!r}, but the file '
                    f'stores {prefix}fc1.weight of shape {fc1} and '
                    f'{prefix}fc2.weight of shape {fc2}')


def _check_tower(tower: dict, part: str, where: str, source: str,
                 prefix: str, shapes: Shapes) -> None:
    """A declared tower against the stored weights, before it is built."""

    def size(key: str, default: int) -> int:
        value = tower.get(key, default)
        if type(value) is not int or value < 1:
            _refuse(source, f'{where}.{key} must be a positive integer, got '
                    f'{value!r}')
        return value

    width, layers = size('width', 768), size('layers', 12)
    if part == 'vision_cfg':
        patch, image = size('patch_size', 16), size('image_size', 224)
        blocks = f'{prefix}visual.transformer.resblocks.'
        expected = {
            f'{prefix}visual.conv1.weight': (width, 3, patch, patch),
            f'{prefix}visual.positional_embedding':
            ((image // patch)**2 + 1, width),
        }
        inputs = (3 * patch * patch + (image // patch)**2) * width
    else:
        vocab, context = size('vocab_size', 49408), size('context_length', 77)
        blocks = f'{prefix}transformer.resblocks.'
        expected = {
            f'{prefix}token_embedding.weight': (vocab, width),
            f'{prefix}positional_embedding': (context, width),
        }
        inputs = (vocab + context) * width
    stored_blocks = _stored_blocks(shapes, blocks)
    if not any(k in shapes for k in expected) and not stored_blocks:
        # A tower dropped after building (a student's text tower).
        declared = layers * 12 * width * width + inputs
        if declared > MAX_ABSENT_TOWER or layers > MAX_ABSENT_LAYERS:
            _refuse(source, f'{where} declares {layers} blocks and about '
                    f'{declared:,} parameters for a tower the file does not '
                    f'store (at most {MAX_ABSENT_LAYERS} blocks and '
                    f'{MAX_ABSENT_TOWER:,} parameters)')
        return
    stored = {k: tuple(shapes.get(k, ())) for k in expected}
    if stored != expected or stored_blocks != layers:
        _refuse(source, f'{where} declares {layers} blocks and the shapes '
                f'{expected}, but the file stores {stored_blocks} blocks and '
                f'{stored}: the architecture is not that of the stored '
                'weights')


def _stored_blocks(shapes: Shapes, head: str) -> int:
    """How many blocks ``head<name>.`` the stored keys number."""
    return len({k[len(head):].split('.', 1)[0]
                for k in shapes if k.startswith(head)})
