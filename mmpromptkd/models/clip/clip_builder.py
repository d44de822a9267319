"""Build an unmodified open_clip ``CLIP`` from a local weight source.

``clip=dict(...)`` is one of ``model_name=, pretrained=`` (local cache
only), ``openai_file=``, ``model_name=, checkpoint=`` or ``model_cfg=``
(random weights unless ``checkpoint=``), each with optional ``precision``.
"""
import copy
import os.path as osp
import re
from typing import Dict, Optional, Tuple

import open_clip
import torch
from torch import nn

from mmpromptkd.utils import (is_remote_path, load_checkpoint_file,
                              raise_remote_refused)
from mmpromptkd.utils.state_dict_check import load_state_dict_strictly
from .tiny_timm_vit import register_tiny_shapes_vit

PRECISIONS = {'fp32': torch.float32, 'fp16': torch.float16,
              'bf16': torch.bfloat16}

# Non-parameters in OpenAI CLIP files; TorchScript archives may also keep the
# causal attention masks, which open_clip rebuilds.
_OPENAI_EXTRA_KEYS = ('input_resolution', 'context_length', 'vocab_size')
_OPENAI_HEAD_WIDTH = 64


def _count_blocks(state_dict: Dict[str, torch.Tensor], prefix: str) -> int:
    """Number of numbered blocks under ``prefix``."""
    pattern = re.compile(re.escape(prefix) + r'(\d+)\.')
    indices = {int(m.group(1)) for k in state_dict if (m := pattern.match(k))}
    return len(indices)


def infer_openai_clip_config(state_dict: Dict[str, torch.Tensor],
                             source: str = 'state dict') -> dict:
    """The open_clip config (``embed_dim``, ``vision_cfg``, ``text_cfg``)
    of OpenAI ViT CLIP weights; heads, not stored, are 64 wide."""
    required = ('visual.conv1.weight', 'visual.positional_embedding',
                'visual.proj', 'text_projection', 'positional_embedding',
                'token_embedding.weight', 'ln_final.weight')
    missing = [k for k in required if k not in state_dict]
    if missing:
        hint = (' (ResNet CLIP models are not supported; use a ViT CLIP)'
                if 'visual.layer1.0.conv1.weight' in state_dict else '')
        raise ValueError(f'{source}: not an OpenAI ViT CLIP state dict, '
                         f'missing keys {missing}{hint}')
    width, _, patch_size, _ = state_dict['visual.conv1.weight'].shape
    num_pos = state_dict['visual.positional_embedding'].shape[0]
    grid = round((num_pos - 1)**0.5)
    if grid * grid + 1 != num_pos:
        raise ValueError(
            f'{source}: visual.positional_embedding has {num_pos} '
            'rows, expected grid * grid + 1')
    text_width = state_dict['ln_final.weight'].shape[0]
    mlp_hidden = state_dict['visual.transformer.resblocks.0.mlp.c_fc.weight']
    text_mlp_hidden = state_dict['transformer.resblocks.0.mlp.c_fc.weight']
    for name, w in (('visual width', width), ('text width', text_width)):
        if w % _OPENAI_HEAD_WIDTH:
            raise ValueError(
                f'{source}: {name} {w} is not a multiple of the OpenAI head '
                f'width {_OPENAI_HEAD_WIDTH}; give the model as model_cfg')
    return dict(
        embed_dim=state_dict['text_projection'].shape[1],
        vision_cfg=dict(
            image_size=grid * patch_size, patch_size=patch_size, width=width,
            layers=_count_blocks(state_dict, 'visual.transformer.resblocks.'),
            head_width=_OPENAI_HEAD_WIDTH,
            mlp_ratio=mlp_hidden.shape[0] / width),
        text_cfg=dict(
            context_length=state_dict['positional_embedding'].shape[0],
            vocab_size=state_dict['token_embedding.weight'].shape[0],
            width=text_width, heads=text_width // _OPENAI_HEAD_WIDTH,
            layers=_count_blocks(state_dict, 'transformer.resblocks.'),
            mlp_ratio=text_mlp_hidden.shape[0] / text_width))


def _read_weights(path: str, arg: str) -> Dict[str, torch.Tensor]:
    """Safely read the state dict of a local weight file, unwrapped from
    common containers."""
    if is_remote_path(path):
        raise_remote_refused(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'clip.{arg}: file not found: {path}')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path)
    obj = load_checkpoint_file(path)
    if isinstance(obj, dict):
        for key in ('state_dict', 'model'):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(
            isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f'{path}: expected a state dict of tensors')
    if obj and all(k.startswith('module.') for k in obj):
        obj = {k[len('module.'):]: v for k, v in obj.items()}
    return obj


def _cached_pretrained_file(model_name: str, tag: str,
                            cache_dir: Optional[str]) -> str:
    """Path of a pretrained tag's weights in the local caches.

    Not ``open_clip.download_pretrained``: it downloads on a cache miss.
    """
    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not cfg:
        tags = [t for m, t in open_clip.list_pretrained() if m == model_name]
        raise ValueError(f'clip.pretrained: unknown tag "{tag}" for '
                         f'{model_name}; known tags: {tags}')
    candidates = []
    if cfg.get('hf_hub'):
        from huggingface_hub import try_to_load_from_cache
        # 'org/repo/' means the default file names, 'org/repo/file' one file.
        repo_id, filename = cfg['hf_hub'].rsplit('/', 1)
        names = [filename] if filename else [
            'open_clip_model.safetensors', 'open_clip_pytorch_model.bin']
        for name in names:
            found = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
            if isinstance(found, str):
                return found
            candidates.append(f'Hugging Face cache: {repo_id}/{name}')
    if cfg.get('url'):
        root = cache_dir or osp.expanduser('~/.cache/clip')
        local = osp.join(root, osp.basename(cfg['url']))
        if osp.isfile(local):
            return local
        candidates.append(local)
    raise FileNotFoundError(
        f'clip: weights of {model_name} / {tag} are not in the local cache '
        f'and nothing is downloaded at run time. Place the file at one of: '
        f'{candidates}, or pass the file directly with '
        'clip=dict(openai_file=...) or clip=dict(model_name=..., '
        'checkpoint=...).')


#: Names open_clip, timm and Hugging Face fetch from the hub.
HUB_PREFIX = 'hf-hub:'


def refuse_hub_names(value, key: str = 'clip') -> None:
    """Refuse any ``hf-hub:`` name in ``value`` (a weight source, model
    config or value in it, at ``key``): the libraries fetch those first."""
    pending = [(key, value)]
    while pending:
        key, value = pending.pop()
        if isinstance(value, str) and value.startswith(HUB_PREFIX):
            raise ValueError(
                f'{key}: "{value}" names a model on the Hugging Face hub, '
                'which would be fetched; nothing is downloaded at run time. '
                'Give the open_clip model name with a local file '
                '(clip=dict(model_name=..., checkpoint=...)) or a model_cfg '
                '(docs/open_clip_coverage.md)')
        if isinstance(value, dict):
            pending += [(f'{key}.{k}', v) for k, v in value.items()]
        elif isinstance(value, (list, tuple)):
            pending += [(f'{key}[{i}]', v) for i, v in enumerate(value)]


def build_clip(cfg: dict) -> nn.Module:
    """An open_clip ``CLIP`` in eval mode from a weight source."""
    return build_clip_and_architecture(cfg)[0]


def build_clip_and_architecture(cfg: dict) -> Tuple[nn.Module, dict]:
    """:func:`build_clip`, and the source (``model_cfg``, ``quick_gelu``,
    ``precision``) that rebuilds its architecture with random weights.

    Not ``open_clip.create_model(name, pretrained=<file>)``: its loader may
    retry ``torch.load`` without ``weights_only``, uses ``torch.jit.load``,
    reads ``.npz`` and silently converts foreign state dicts; loading here is
    safe and strict.
    """
    refuse_hub_names(cfg)
    cfg = dict(cfg)
    precision = cfg.pop('precision', 'fp32')
    if precision not in PRECISIONS:
        raise ValueError(f'clip.precision: expected one of '
                         f'{list(PRECISIONS)}, got "{precision}"')
    cache_dir = cfg.pop('cache_dir', None)
    sources = [k for k in ('openai_file', 'model_cfg', 'model_name')
               if k in cfg]
    if len(sources) != 1:
        raise ValueError(
            'clip: give exactly one of openai_file, model_cfg or model_name '
            f'(with pretrained or checkpoint), got keys {sorted(cfg)}')
    source = sources[0]
    state_dict = weights_name = None
    if source == 'openai_file':
        allowed = {'openai_file'}
        weights_name = cfg['openai_file']
        state_dict = _read_weights(weights_name, 'openai_file')
        model_cfg = infer_openai_clip_config(state_dict, weights_name)
        quick_gelu = True
    elif source == 'model_cfg':
        allowed = {'model_cfg', 'quick_gelu', 'checkpoint'}
        model_cfg = copy.deepcopy(dict(cfg['model_cfg']))
        quick_gelu = cfg.get('quick_gelu', False)
    else:
        allowed = {'model_name', 'pretrained', 'checkpoint', 'quick_gelu'}
        name = cfg['model_name']
        model_cfg = open_clip.get_model_config(name)
        if model_cfg is None:
            raise ValueError(
                f'clip.model_name: unknown open_clip model "{name}"; known '
                'ViT models include '
                f'{[m for m in open_clip.list_models() if "ViT" in m][:20]}')
        quick_gelu = model_cfg.pop('quick_gelu', False)  # a copy: pop it
        if ('pretrained' in cfg) == ('checkpoint' in cfg):
            raise ValueError(f'clip: model_name "{name}" needs exactly one '
                             'of pretrained (a tag) or checkpoint (a file)')
        if 'pretrained' in cfg:
            weights_name = _cached_pretrained_file(name, cfg['pretrained'],
                                                   cache_dir)
            tag_cfg = open_clip.get_pretrained_cfg(name, cfg['pretrained'])
            # Weights trained with QuickGELU must run with it.
            quick_gelu = quick_gelu or tag_cfg.get('quick_gelu', False)
            state_dict = _read_weights(weights_name, 'pretrained')
        quick_gelu = cfg.get('quick_gelu', quick_gelu)
    unknown = set(cfg) - allowed
    if unknown:
        raise ValueError(f'clip: unexpected keys {sorted(unknown)} for the '
                         f'{source} source; allowed: {sorted(allowed)}')
    if cfg.get('checkpoint') is not None:
        weights_name = cfg['checkpoint']
        state_dict = _read_weights(weights_name, 'checkpoint')
    model = _build_open_clip_model(model_cfg, quick_gelu)
    if state_dict is not None:
        expected = model.state_dict()
        state_dict = {
            k: v.to(expected[k].dtype) if k in expected else v
            for k, v in state_dict.items() if k not in _OPENAI_EXTRA_KEYS
            and k.split('.')[-1] != 'attn_mask'}
        load_state_dict_strictly(model, state_dict, weights_name)
    architecture = dict(
        model_cfg=copy.deepcopy(model_cfg), quick_gelu=quick_gelu,
        precision=precision)
    return model.to(PRECISIONS[precision]).eval(), architecture


def pretrained_normalization(
        cfg: dict) -> Optional[Tuple[Tuple[float, ...], Tuple[float, ...]]]:
    """``(mean, std)`` (0-1 scale) the source's weights were trained with,
    or None where it does not say.

    Read from the tag's config: ``open_clip.get_model_preprocess_cfg`` needs
    a model built by ``open_clip.create_model``.
    """
    refuse_hub_names(cfg)
    if 'openai_file' in cfg:
        return (tuple(open_clip.OPENAI_DATASET_MEAN),
                tuple(open_clip.OPENAI_DATASET_STD))
    if 'model_name' not in cfg or 'pretrained' not in cfg:
        return None
    tag_cfg = open_clip.get_pretrained_cfg(cfg['model_name'],
                                           cfg['pretrained'])
    return (tuple(tag_cfg.get('mean') or open_clip.OPENAI_DATASET_MEAN),
            tuple(tag_cfg.get('std') or open_clip.OPENAI_DATASET_STD))


def _build_open_clip_model(model_cfg: dict, quick_gelu: bool) -> nn.Module:
    """An open_clip ``CLIP`` or ``CustomTextCLIP`` of random weights.

    Not ``open_clip.create_model``, which takes no config dict and turns on
    tower downloads when no weight file is given; configs that would download
    are refused.
    """
    refuse_hub_names(model_cfg, 'clip.model_cfg')
    if model_cfg.get('multimodal_cfg'):
        raise ValueError(
            'clip: model configs with multimodal_cfg (CoCa captioners) are '
            'not supported: their text decoder has no place in prompt '
            'learning; use a contrastive CLIP model')
    hf_text = model_cfg.get('text_cfg', {}).get('hf_model_name')
    if hf_text:
        raise ValueError(
            f'clip: the text tower is the Hugging Face model "{hf_text}", '
            'which open_clip builds from the hub (a download); models with '
            'open_clip\'s own text transformer are supported')
    # (text_cfg.hf_model_pretrained acts only with the hf_model_name above.)
    if model_cfg.get('vision_cfg', {}).get('timm_model_pretrained'):
        raise ValueError(
            'clip: model_cfg.vision_cfg.timm_model_pretrained=True would '
            'download tower weights; nothing is downloaded at run time: set '
            'it False and give the weights with pretrained= or checkpoint=')
    unknown = set(model_cfg) - {'embed_dim', 'vision_cfg', 'text_cfg',
                                'init_logit_bias', 'custom_text'}
    if unknown:
        raise ValueError(f'clip: model_cfg keys {sorted(unknown)} are not '
                         'open_clip model settings (embed_dim, vision_cfg, '
                         'text_cfg, init_logit_bias, custom_text)')
    register_tiny_shapes_vit(
        model_cfg.get('vision_cfg', {}).get('timm_model_name'))
    kwargs = {k: v for k, v in model_cfg.items() if k != 'custom_text'}
    model_class = open_clip.CustomTextCLIP if model_cfg.get(
        'custom_text') else open_clip.CLIP
    return model_class(**kwargs, quick_gelu=quick_gelu)


def text_only_source(clip: dict) -> dict:
    """A config-dict source with a one-block image tower stand-in (for
    text-only models); sources with weight files are returned unchanged."""
    if set(clip) - {'model_cfg', 'quick_gelu', 'precision'}:
        return clip
    model_cfg = copy.deepcopy(dict(clip['model_cfg']))
    model_cfg['vision_cfg'] = dict(
        image_size=32, patch_size=32, width=64, layers=1, head_width=64)
    return dict(clip, model_cfg=model_cfg)
