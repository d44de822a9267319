"""Random CLIP weights in place of every weight file a config names, for
``tools/misc/dry_run.py``: the config's own architectures (or the
project's tiny CLIPs), and a small stand-in for a Hugging Face tokenizer
that is not in the local cache."""
import copy
import json
import os
import os.path as osp
from typing import Dict

import torch
from mmengine.config import Config

from mmpromptkd.fileio import temporary_path

_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = Config.fromfile(
    osp.join(_REPO, 'configs', '_base_', 'models', 'promptkd_tiny-clip.py'))
TINY_IMAGE_SIZE = 32
#: Prompt depth of every prompted tiny CLIP (they have 4 and 6 blocks).
TINY_PROMPT_DEPTH = 2
DISTILLERS = ('PromptKDDistiller', 'mmpromptkd.PromptKDDistiller')


def bare_type(type_name) -> str:
    """A registry type without its scope."""
    return str(type_name).split('.')[-1]


def clip_architecture(clip: dict, role: str, tiny: bool) -> dict:
    """The architecture of a CLIP weight source, without its weights.

    Args:
        clip (dict): The config's weight source (``openai_file``,
            ``model_name`` or ``model_cfg``).
        role (str): 'student' or 'teacher' (which tiny CLIP to use).
        tiny (bool): The project's tiny CLIP instead.

    Returns:
        dict: ``dict(model_cfg=..., quick_gelu=...)`` (random weights).
    """
    import open_clip
    if tiny:
        return dict(model_cfg=copy.deepcopy(TINY[f'tiny_{role}_clip']),
                    quick_gelu=True)
    if 'model_cfg' in clip:
        model_cfg = clip['model_cfg']
    else:
        name = clip.get('model_name') or osp.splitext(
            osp.basename(clip['openai_file']))[0]
        model_cfg = open_clip.get_model_config(name)
        if model_cfg is None:
            raise ValueError(f'clip: no open_clip architecture named {name!r}'
                             ' (from the weight file name); give model_name')
    openai = 'openai_file' in clip or clip.get('pretrained') == 'openai'
    source = dict(model_cfg=copy.deepcopy(dict(model_cfg)),
                  quick_gelu=clip.get('quick_gelu', openai))
    if 'precision' in clip:
        source['precision'] = clip['precision']
    return source


class RandomWeights:
    """Random CLIP weights, one file per architecture, the same in every
    phase (a checkpoint records the fingerprint of its frozen weights).

    Args:
        folder (str): Where the weight files go (inside the work dir).
        tiny (bool): The project's tiny CLIPs instead of the config's.
    """

    def __init__(self, folder: str, tiny: bool) -> None:
        self.folder = folder
        self.tiny = tiny
        self.files: Dict[str, str] = {}

    def source(self, clip: dict, role: str) -> dict:
        """The weight source that replaces ``clip``."""
        from mmpromptkd.models.clip.clip_builder import build_clip
        arch = clip_architecture(clip, role, self.tiny)
        self._stand_in_tokenizer(arch['model_cfg'].get('text_cfg', {}))
        key = json.dumps(arch, sort_keys=True)
        if key not in self.files:
            path = osp.join(self.folder, f'clip_{len(self.files)}.pth')
            if osp.lexists(path):
                raise FileExistsError(f'{path} exists; random weights never '
                                      'replace a file (give an empty or '
                                      'new folder)')
            os.makedirs(self.folder, exist_ok=True)
            with torch.random.fork_rng(devices=[]):
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
        its Hugging Face tokenizer is not in the local cache."""
        from mmpromptkd.models.clip.hf_tokenizer import find_tokenizer_file
        from small_hf_tokenizer import layout_of, write_small_hf_tokenizer
        name = text_cfg.get('hf_tokenizer_name')
        if not name:
            return
        try:
            find_tokenizer_file(name)
        except FileNotFoundError:
            layout = layout_of(name)
            text_cfg['hf_tokenizer_name'] = write_small_hf_tokenizer(
                osp.join(self.folder, f'tokenizer-{layout}'), layout)
            print(f'  (the tokenizer {name} is not in the local cache: a '
                  f'small stand-in of its layout, "{layout}")')


def replace_weights(node, role: str, weights: RandomWeights) -> None:
    """Replace every weight source under a model config, in place."""
    if isinstance(node, list):
        for item in node:
            replace_weights(item, role, weights)
        return
    if not isinstance(node, dict):
        return
    tiny = weights.tiny
    if isinstance(node.get('clip'), dict):
        node['clip'] = weights.source(node['clip'], role)
        if 'checkpoint' in node:
            node['checkpoint'] = None  # a stage-(a) checkpoint
        if tiny:
            for key in ('vision_prompt_depth', 'text_prompt_depth',
                        'prompt_depth'):
                if node.get(key):
                    node[key] = min(node[key], TINY_PROMPT_DEPTH)
    init_cfg = node.get('init_cfg')
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        node['init_cfg'] = None
    if tiny and bare_type(node.get('type')) == 'BackboneStudent':
        node['image_size'] = TINY_IMAGE_SIZE
    for key, value in node.items():
        if key != 'clip':
            replace_weights(
                value, 'teacher' if key in ('teacher', 'text_encoder') else
                'student' if key == 'student' else role, weights)


def prepare_model(cfg: Config, weights: RandomWeights) -> None:
    """Random or tiny weights everywhere in ``cfg.model``."""
    model = cfg.model.to_dict()
    role = 'student' if model.get('type') in DISTILLERS else 'teacher'
    replace_weights(model, role, weights)
    if role == 'student' and model.get('teacher') is not None:
        # The stage-(a) checkpoint is left out: the teacher's prompts are
        # random, as every weight of a dry run.
        model['allow_untrained_teacher'] = True
    projector = model.get('projector')
    if weights.tiny and isinstance(projector, dict) and \
            'out_channels' in projector and model.get('teacher') is None:
        projector['out_channels'] = TINY.tiny_teacher_clip['embed_dim']
    cfg.model = model
