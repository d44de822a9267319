"""Random CLIP weights in place of every weight file a config names, for
``tools/misc/dry_run.py``: the config's own architectures, or tiny models
of the same families (:mod:`tiny_clip_family`), and a small stand-in for a
Hugging Face tokenizer that is not in the local cache (always, for a tiny
model)."""
import contextlib
import copy
import json
import os
import os.path as osp
from typing import Dict

import torch

from mmpromptkd.fileio import temporary_path
from tiny_clip_family import (TINY_IMAGE_SIZE, TINY_LAYERS,
                              clamp_prompt_depths, tiny_model_cfg,
                              tiny_timm_trunks)

DISTILLERS = ('PromptKDDistiller', 'mmpromptkd.PromptKDDistiller')


def bare_type(type_name) -> str:
    """A registry type without its scope."""
    return str(type_name).split('.')[-1]


def clip_architecture(clip: dict, tiny: bool = False) -> dict:
    """The architecture of a CLIP weight source, without its weights.

    Args:
        clip (dict): The config's weight source (``openai_file``,
            ``model_name`` or ``model_cfg``).
        tiny (bool): A tiny model of the same family instead
            (:func:`tiny_clip_family.tiny_model_cfg`; fp32, whatever
            ``precision`` the source names). Defaults to False.

    Returns:
        dict: ``dict(model_cfg=..., quick_gelu=...)`` (random weights).

    Raises:
        ValueError: If the source names no architecture.
    """
    import open_clip
    if 'model_cfg' in clip:
        model_cfg = clip['model_cfg']
    elif 'model_name' in clip or 'openai_file' in clip:
        name = clip.get('model_name') or osp.splitext(
            osp.basename(clip['openai_file']))[0]
        model_cfg = open_clip.get_model_config(name)
        if model_cfg is None:
            raise ValueError(f'clip: no open_clip architecture named {name!r}'
                             ' (from the weight file name); give model_name')
    else:
        raise ValueError(f'clip: {clip!r} names no architecture (model_cfg, '
                         'model_name or openai_file)')
    model_cfg = copy.deepcopy(dict(model_cfg))
    # A setting of the source, not of the model (some open_clip configs).
    openai = model_cfg.pop('quick_gelu', False) or 'openai_file' in clip \
        or clip.get('pretrained') == 'openai'
    source = dict(model_cfg=model_cfg,
                  quick_gelu=clip.get('quick_gelu', openai))
    if tiny:
        source['model_cfg'] = tiny_model_cfg(source['model_cfg'])
    elif 'precision' in clip:
        source['precision'] = clip['precision']
    return source


class RandomWeights:
    """Random CLIP weights, one file per architecture, the same in every
    phase (a checkpoint records the fingerprint of its frozen weights).

    Args:
        folder (str): Where the weight files go (inside the work dir).
        tiny (bool): Tiny models of the config's CLIP families instead of
            its architectures.
    """

    def __init__(self, folder: str, tiny: bool) -> None:
        self.folder = folder
        self.tiny = tiny
        self.files: Dict[str, str] = {}

    def source(self, clip: dict) -> dict:
        """The weight source that replaces ``clip``."""
        from mmpromptkd.models.clip.clip_builder import build_clip
        arch = clip_architecture(clip, self.tiny)
        self._stand_in_tokenizer(arch['model_cfg'].get('text_cfg', {}))
        key = json.dumps(arch, sort_keys=True)
        if key not in self.files:
            path = osp.join(self.folder, f'clip_{len(self.files)}.pth')
            if osp.lexists(path):
                raise FileExistsError(f'{path} exists; random weights never '
                                      'replace a file (give an empty or '
                                      'new folder)')
            os.makedirs(self.folder, exist_ok=True)
            towers = tiny_timm_trunks() if self.tiny else \
                contextlib.nullcontext()
            with torch.random.fork_rng(devices=[]), towers:
                torch.manual_seed(len(self.files))
                weights = build_clip(dict(arch)).state_dict()
            # Whole or not at all: a temporary file renamed into place.
            tmp = temporary_path(path)
            try:
                torch.save(weights, tmp)
                os.replace(tmp, path)
            finally:
                if osp.exists(tmp):
                    os.remove(tmp)
            del weights
            self.files[key] = path
        return dict(arch, checkpoint=self.files[key])

    def _stand_in_tokenizer(self, text_cfg: dict) -> None:
        """Name a small tokenizer of the same layout in ``text_cfg`` where
        its Hugging Face tokenizer is not in the local cache, and always
        for a tiny model (whose vocabulary is cut to the stand-in's)."""
        from mmpromptkd.models.clip.hf_tokenizer import find_tokenizer_file
        from small_hf_tokenizer import layout_of, write_small_hf_tokenizer
        name = text_cfg.get('hf_tokenizer_name')
        if not name:
            return
        if not self.tiny:
            try:
                find_tokenizer_file(name)
                return
            except FileNotFoundError:
                pass
        layout = layout_of(name)
        text_cfg['hf_tokenizer_name'] = write_small_hf_tokenizer(
            osp.join(self.folder, f'tokenizer-{layout}'), layout)
        why = 'a tiny model' if self.tiny else 'not in the local cache'
        print(f'  (the tokenizer {name}: {why}, a small stand-in of its '
              f'layout, "{layout}")')


def replace_weights(node, weights: RandomWeights,
                    where: str = 'model') -> None:
    """Replace every weight source under a model config, in place (and
    for tiny models, clamp prompt depths to their towers, saying so)."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            replace_weights(item, weights, f'{where}[{i}]')
        return
    if not isinstance(node, dict):
        return
    tiny = weights.tiny
    if isinstance(node.get('clip'), dict):
        node['clip'] = weights.source(node['clip'])
        if 'checkpoint' in node:
            node['checkpoint'] = None  # a stage-(a) checkpoint
        if tiny:
            for note in clamp_prompt_depths(node, where):
                print(f'  (tiny towers of {TINY_LAYERS} blocks: {note})')
    init_cfg = node.get('init_cfg')
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        node['init_cfg'] = None
    if tiny and bare_type(node.get('type')) == 'BackboneStudent':
        node['image_size'] = TINY_IMAGE_SIZE
    for key, value in node.items():
        if key != 'clip':
            replace_weights(value, weights, f'{where}.{key}')


def prepare_model(cfg, weights: RandomWeights) -> None:
    """Random or tiny weights everywhere in ``cfg.model``.

    A tiny model keeps its source's embedding dimension, so a projector
    sized for the teacher (``out_channels``, where the teacher is not
    built) fits the tiny teacher too.
    """
    model = cfg.model.to_dict()
    replace_weights(model, weights)
    if model.get('type') in DISTILLERS:
        # The stage-(a) checkpoint is left out: the teacher's prompts (and
        # so a teacher cache recorded in the dry run) are random, as every
        # weight of a dry run.
        model['allow_untrained_teacher'] = True
    cfg.model = model
