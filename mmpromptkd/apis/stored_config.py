"""Validation of model configs that come from files.

mmengine's registries import whatever a config's ``type`` names
(``'os.system'``, ``'evil.X'``), so a config stored in a data file (an
exported student's ``meta['model']``) is checked before it is built: only
this package's models and their arguments, nothing naming a file, hub or
folder, and every declared size against the stored weights before anything
is allocated.
"""
import copy
import dataclasses
import functools
import inspect
import math
from typing import (Any, Dict, FrozenSet, Iterable, Iterator, Optional,
                    Sequence, Tuple)

import torch
from open_clip.model import CLIPTextCfg, CLIPVisionCfg

__all__ = [
    'STORED_CONFIG_EXTRA_TYPES', 'check_stored_config',
    'image_only_architecture'
]

# mmpretrain components a stored model config of ours may name.
STORED_CONFIG_EXTRA_TYPES = frozenset({'ClsDataPreprocessor'})
_SCOPE = 'mmpromptkd'
#: Containers a stored config may hold in all, and how deeply nested.
MAX_NODES = 10000
MAX_DEPTH = 32
#: Keys naming files or initialisation, which a stored config leaves unset.
_UNSET_KEYS = ('checkpoint', 'pretrained', 'init_cfg')
#: What a stored ``clip`` may hold: an architecture, no weight source.
_CLIP_KEYS = frozenset({'model_cfg', 'quick_gelu', 'precision'})
_MODEL_CFG_KEYS = frozenset({'embed_dim', 'vision_cfg', 'text_cfg',
                             'quick_gelu', 'custom_text', 'init_logit_bias'})
# No Hugging Face models or tokenizers, which name hubs and folders.
_TOWER_KEYS = {
    'vision_cfg': frozenset(f.name for f in dataclasses.fields(CLIPVisionCfg)),
    'text_cfg': frozenset(f.name for f in dataclasses.fields(CLIPTextCfg)
                          if not f.name.startswith(('hf_', 'tokenizer_'))),
}
#: The largest image side a stored timm tower may declare.
MAX_IMAGE_SIZE = 4096
#: The smallest plain text tower: what an image-only architecture declares.
_STAND_IN_TEXT = dict(context_length=8, vocab_size=64, width=64, heads=1,
                      layers=1)


def image_only_architecture(architecture: dict) -> dict:
    """A CLIP architecture whose text tower is a one-block stand-in.

    A student drops its text tower after building, so a rebuilt one need
    not allocate it at full size first.

    Args:
        architecture (dict): ``dict(model_cfg=..., ...)``, as
            ``build_clip_and_architecture`` returns it.

    Returns:
        dict: A copy with the stand-in text tower.
    """
    model_cfg = copy.deepcopy(dict(architecture['model_cfg']))
    model_cfg['text_cfg'] = dict(_STAND_IN_TEXT)
    return dict(architecture, model_cfg=model_cfg)


#: Parameters of a declared tower that the file does not store: above the
#: text tower of ViT-L/14 (123.7 M), far below what would exhaust memory.
MAX_ABSENT_TOWER = 200 * 10**6
#: Blocks of such a tower: above any of open_clip's text towers (32).
MAX_ABSENT_LAYERS = 64


def check_stored_config(cfg: Any,
                        source: str,
                        extra_types: Optional[Iterable[str]] = None,
                        state_shapes: Optional[Dict[str, Sequence[int]]] = None
                        ) -> None:
    """Refuse a stored model config that is not a plain config of ours.

    Args:
        cfg (Any): The config read from a file (dicts, lists and values).
        source (str): Where it came from, for messages (e.g. the file and
            the key).
        extra_types (Iterable[str], optional): Further bare names to allow.
            Defaults to :data:`STORED_CONFIG_EXTRA_TYPES`.
        state_shapes (dict[str, Sequence[int]], optional): Shapes of the
            tensors the file stores, by state-dict key; the declared CLIP
            architectures must match them. Defaults to None (not checked).

    Raises:
        ValueError: If the config is aliased, cyclic, too large or deep,
            names a type outside this package's models or another scope,
            has a key its component does not take, names a file, hub or
            folder, or declares another architecture than the file stores.
    """
    allowed = frozenset(STORED_CONFIG_EXTRA_TYPES if extra_types is None
                        else extra_types)
    later = []  # checks against the stored shapes, after the CLIPs'
    for node, where in _containers(cfg, source):
        if not isinstance(node, dict):
            continue
        _check_keys(node, where, source, allowed)
        if isinstance(node.get('clip'), dict):
            # A text-only PromptedCLIP builds no image tower (a stand-in).
            _check_clip(node['clip'], f'{where}.clip', source, state_shapes,
                        node.get('image_tower', True) is not False)
            later.append((0, _check_prompts, node, where))
        if node.get('type') in ('FeatureProjector',
                                f'{_SCOPE}.FeatureProjector'):
            later.append((1, _check_projector, node, where))
    # After the CLIPs they run with (which tell the most): prompts first.
    for _, check, node, where in sorted(later, key=lambda c: c[0]):
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
            raise ValueError(
                f'{source}: {where} is the same object as {seen[id(node)]} '
                '(aliased or cyclic); a stored config is a tree. Nothing '
                'was built.')
        seen[id(node)] = where
        if len(seen) > MAX_NODES:
            raise ValueError(f'{source}: more than {MAX_NODES} containers '
                             f'(at {where}). Nothing was built.')
        if depth > MAX_DEPTH:
            raise ValueError(f'{source}: {where} is nested deeper than '
                             f'{MAX_DEPTH} levels. Nothing was built.')
        yield node, where
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if isinstance(node, dict) and not isinstance(key, str):
                raise ValueError(f'{source}: {where} has the key {key!r}; '
                                 'config keys are strings')
            path = f'{where}.{key}' if isinstance(node, dict) \
                else f'{where}[{key}]'
            stack.append((value, path, depth + 1))


def _check_keys(node: dict, where: str, source: str,
                allowed: FrozenSet[str]) -> None:
    """The type, scope, unset keys and arguments of one config dict."""
    from mmpromptkd.registry import MODELS
    for key in _UNSET_KEYS:
        if node.get(key) is not None and not where.endswith('.clip'):
            raise ValueError(
                f'{source}: {where}.{key} is {node[key]!r}; a stored config '
                'names no file and no initialisation (the file holds every '
                'weight). Nothing was built.')
    if node.get('_scope_', _SCOPE) != _SCOPE:
        raise ValueError(f'{source}: {where}._scope_ is {node["_scope_"]!r};'
                         f' a stored config builds in the {_SCOPE!r} scope '
                         'only. Nothing was built.')
    if 'type' not in node:
        return
    name = node['type']
    if isinstance(name, str) and name.startswith(_SCOPE + '.'):
        name = name[len(_SCOPE) + 1:]
    if not isinstance(name, str) or (name not in MODELS.module_dict
                                     and name not in allowed):
        raise ValueError(
            f'{source}: {where}.type is {node["type"]!r}, which is not a '
            f'model of mmpromptkd; a stored config may only name these '
            f'types: {sorted(set(MODELS.module_dict) | allowed)}. Nothing '
            'was built.')
    component = MODELS.get(name)
    parameters = inspect.signature(component).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    for key in node:
        if key not in parameters and key not in ('type', '_scope_'):
            raise ValueError(
                f'{source}: {where}.{key}: {name} accepts '
                f'{sorted(parameters)}, not {key!r}. Nothing was built.')


def _check_clip(clip: dict, where: str, source: str,
                state_shapes: Optional[Dict[str, Sequence[int]]],
                image_tower: bool) -> None:
    """Check a stored ``clip``: an architecture, of the stored weights."""
    for key in clip:
        if key not in _CLIP_KEYS:
            raise ValueError(
                f'{source}: {where}.{key}: a stored CLIP is an architecture '
                f'({sorted(_CLIP_KEYS)}), with no weight file, name or '
                'cache. Nothing was built.')
    model_cfg = clip.get('model_cfg')
    if not isinstance(model_cfg, dict):
        raise ValueError(f'{source}: {where}.model_cfg must be a dict. '
                         'Nothing was built.')
    # model.student.clip holds the weights under student.clip.
    prefix = where.split('.', 1)[1] + '.'
    where = f'{where}.model_cfg'
    for key in model_cfg:
        if key not in _MODEL_CFG_KEYS:
            raise ValueError(f'{source}: {where}.{key} is not one of '
                             f'{sorted(_MODEL_CFG_KEYS)}. Nothing was built.')
    for part, keys in _TOWER_KEYS.items():
        tower = model_cfg.get(part, {})
        if not isinstance(tower, dict):
            raise ValueError(f'{source}: {where}.{part} must be a dict. '
                             'Nothing was built.')
        for key in tower:
            if key not in keys:
                raise ValueError(
                    f'{source}: {where}.{part}.{key}: a stored CLIP takes '
                    "open_clip's towers only (no Hugging Face models or "
                    'tokenizers, which name hubs or folders). Nothing was '
                    'built.')
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
        raise ValueError(f'{source}: {where}.timm_model_pretrained would '
                         'download weights. Nothing was built.')
    name = tower.get('timm_model_name')
    # One of open_clip's timm towers, or one this package registers.
    if not isinstance(name, str) or (
            name not in _open_clip_timm_towers() and not (
                timm.is_model(name) and timm.models.model_entrypoint(
                    name).__module__.startswith('mmpromptkd.'))):
        raise ValueError(
            f'{source}: {where}.timm_model_name is {name!r}, not a timm '
            'tower of one of open_clip\'s model configs (or the synthetic '
            'demo\'s). Nothing was built.')
    image = tower.get('image_size', 224)
    if type(image) is not int or not 1 <= image <= MAX_IMAGE_SIZE:
        raise ValueError(f'{source}: {where}.image_size must be an integer '
                         f'in [1, {MAX_IMAGE_SIZE}], got {image!r}. Nothing '
                         'was built.')


def _check_declared_weights(clip: dict, where: str, source: str,
                            prefix: str, shapes: Dict[str, Sequence[int]],
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
        raise ValueError(f'{source}: {where} does not build: '
                         f'{type(e).__name__}: {e}. Nothing was built.') from e
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
        raise ValueError(
            f'{source}: {where} declares other {part} weights than '
            f'the file stores (first differences, as (key, declared, '
            f'stored): {first}): the architecture is not that of the stored '
            'weights. Nothing was built.')
    absent = sum(t.numel() for t in model.parameters()) + sum(
        t.numel() for t in model.buffers()) - sum(
            math.prod(declared[k]) for k in declared.keys() & stored.keys())
    if absent > MAX_ABSENT_TOWER:
        raise ValueError(
            f'{source}: {where} declares {absent:,} elements that '
            f'the file does not store (at most {MAX_ABSENT_TOWER:,}: a '
            'dropped tower and buffers). Nothing was built.')
    # A timm trunk with a fixed patch grid must declare its image size (a
    # CNN has no grid; a dynamic or lax one takes any size).
    visual = model.visual if image_tower else None
    embed = getattr(getattr(visual, 'trunk', None), 'patch_embed', None)
    size = getattr(embed, 'img_size', None)
    if size is not None and getattr(embed, 'strict_img_size', True) and \
            not getattr(visual.trunk, 'dynamic_img_size', False) and \
            tuple(visual.image_size) != tuple(size):
        raise ValueError(
            f'{source}: {where}.vision_cfg.image_size is '
            f'{tuple(visual.image_size)[0]}, but its timm trunk takes '
            f'{tuple(size)} images (the patch grid of its stored positional '
            'embedding). Nothing was built.')


def _check_resnet(tower: dict, where: str, source: str, prefix: str,
                  shapes: Dict[str, Sequence[int]]) -> None:
    """A declared ModifiedResNet's blocks per stage against the stored."""
    layers = tower['layers']
    if len(layers) != 4 or not all(type(n) is int and n >= 1
                                   for n in layers):
        raise ValueError(f'{source}: {where}.layers must be four positive '
                         f'block counts (a ModifiedResNet), got {layers!r}. '
                         'Nothing was built.')
    stored = [_stored_blocks(shapes, f'{prefix}visual.layer{stage}.')
              for stage in range(1, 5)]
    if list(layers) != stored:
        raise ValueError(
            f'{source}: {where}.layers declares {list(layers)} blocks per '
            f'stage, but the file stores {stored}: the architecture is not '
            'that of the stored weights. Nothing was built.')


def _check_prompts(node: dict, where: str, source: str,
                   shapes: Dict[str, Sequence[int]]) -> None:
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
            raise ValueError(
                f'{source}: {where}.{tower}_prompt_length is {length!r} and '
                f'{tower}_prompt_depth {depth!r}, but the file stores '
                f'{stored_depth} {tower} prompts, the first of shape '
                f'{None if first is None else tuple(first)}. Nothing was '
                'built.')


def _check_projector(node: dict, where: str, source: str,
                     shapes: Dict[str, Sequence[int]]) -> None:
    """A declared FeatureProjector's widths against its stored layers."""
    prefix = where.split('.', 1)[1] + '.'
    fc1 = tuple(shapes.get(f'{prefix}fc1.weight', ()))
    fc2 = tuple(shapes.get(f'{prefix}fc2.weight', ()))
    out = node.get('out_channels')
    hidden = node.get('hidden_channels', out)
    declared = dict(out_channels=(out, fc2[:1]),
                    hidden_channels=(hidden, fc1[:1]),
                    in_channels=(node.get('in_channels'), fc1[1:2]))
    for key, (value, stored) in declared.items():
        if (value is not None or key != 'in_channels') and \
                stored != (value, ):
            raise ValueError(
                f'{source}: {where}.{key} is {value!r}, but the file stores '
                f'{prefix}fc1.weight of shape {fc1} and {prefix}fc2.weight '
                f'of shape {fc2}. Nothing was built.')


def _check_tower(tower: dict, part: str, where: str, source: str,
                 prefix: str, shapes: Dict[str, Sequence[int]]) -> None:
    """A declared tower against the stored weights, before it is built."""

    def size(key: str, default: int) -> int:
        value = tower.get(key, default)
        if type(value) is not int or value < 1:
            raise ValueError(f'{source}: {where}.{key} must be a positive '
                             f'integer, got {value!r}. Nothing was built.')
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
            raise ValueError(
                f'{source}: {where} declares {layers} blocks and about '
                f'{declared:,} parameters for a tower the file does not '
                f'store (at most {MAX_ABSENT_LAYERS} blocks and '
                f'{MAX_ABSENT_TOWER:,} parameters). Nothing was built.')
        return
    stored = {k: tuple(shapes.get(k, ())) for k in expected}
    if stored != expected or stored_blocks != layers:
        raise ValueError(
            f'{source}: {where} declares {layers} blocks and the shapes '
            f'{expected}, but the file stores {stored_blocks} blocks '
            f'and {stored}: the architecture is not that of the stored '
            'weights. Nothing was built.')


def _stored_blocks(shapes: Dict[str, Sequence[int]], head: str) -> int:
    """How many blocks ``head<name>.`` the stored keys number."""
    return len({k[len(head):].split('.', 1)[0]
                for k in shapes if k.startswith(head)})
