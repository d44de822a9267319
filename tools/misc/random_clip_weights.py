"""Random CLIP weights (of the config's architectures, or tiny ones of
their own families) and stand-in tokenizers for every weight file a config
names (``dry_run.py``)."""
import contextlib
import copy
import json
import os
import os.path as osp
from typing import Dict, Iterator, List

import torch

from config_inputs import bare_type
from mmpromptkd.fileio import temporary_path
from scaled_open_clip import scale_model_cfg, small_timm_trunks

#: Image size of every tiny model (the dry run's pipelines resize to it).
TINY_IMAGE_SIZE = 32
#: Patch size of the tiny ViTs (a 4 x 4 grid).
TINY_PATCH_SIZE = 8
#: Blocks of each tiny transformer tower.
TINY_LAYERS = 3
#: The deepest prompts: below TINY_LAYERS, so unprompted blocks run too.
TINY_PROMPT_DEPTH = 2
#: Prompt depth settings of the prompt learners.
PROMPT_DEPTH_KEYS = ('vision_prompt_depth', 'text_prompt_depth',
                     'prompt_depth')


def tiny_model_cfg(model_cfg: dict) -> dict:
    """A tiny copy of an open_clip model config."""
    cfg = scale_model_cfg(model_cfg, layers=TINY_LAYERS)
    vision = cfg['vision_cfg']
    vision['image_size'] = TINY_IMAGE_SIZE
    if not vision.get('timm_model_name') and \
            not isinstance(vision.get('layers'), (list, tuple)):
        vision['patch_size'] = TINY_PATCH_SIZE  # open_clip's own ViT
    return cfg


_active = []


@contextlib.contextmanager
def tiny_timm_trunks() -> Iterator[None]:
    """Until the context ends, timm builds every trunk tiny (once, nested).
    """
    if _active:
        yield
        return
    _active.append(True)
    try:
        with small_timm_trunks(
                layers=TINY_LAYERS,
                image=dict(img_size=TINY_IMAGE_SIZE,
                           patch_size=TINY_PATCH_SIZE)):
            yield
    finally:
        _active.pop()


def clamp_prompt_depths(node: dict, where: str) -> List[str]:
    """Clamp a prompt learner's depths to the tiny towers; a note each."""
    notes = []
    for key in PROMPT_DEPTH_KEYS:
        depth = node.get(key)
        if depth and depth > TINY_PROMPT_DEPTH:
            node[key] = TINY_PROMPT_DEPTH
            notes.append(f'{where}.{key} {depth} -> {TINY_PROMPT_DEPTH}')
    return notes


DISTILLERS = ('PromptKDDistiller', 'mmpromptkd.PromptKDDistiller')


def clip_architecture(clip: dict, tiny: bool = False) -> dict:
    """``dict(model_cfg=..., quick_gelu=...)`` of a CLIP source (``tiny``:
    a tiny model of its family)."""
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
    """Random CLIP weights in ``folder``, one file per architecture, the
    same in every phase (checkpoints record their frozen weights)."""

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
        """A small tokenizer where the real one is missing, or ``tiny``."""
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
    """Replace every weight source under a model config, in place."""
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
    """Random or tiny weights everywhere in ``cfg.model``."""
    model = cfg.model.to_dict()
    replace_weights(model, weights)
    if model.get('type') in DISTILLERS:
        # No stage-(a) checkpoint: the teacher's prompts are random too.
        model['allow_untrained_teacher'] = True
    cfg.model = model
