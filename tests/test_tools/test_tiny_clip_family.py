"""tools/misc/random_clip_weights.py: ``dry_run.py --tiny`` runs each config's
own CLIP family.

For every CLIP source of every shipped config, the real architecture (as
the dry run resolves it, built on the meta device) and its tiny model are
of the same kind: model class (custom text or not), image tower and timm
trunk classes, the prompted tower class, pooling, class and register
tokens, text pooling, causal mask, context length and logit bias; the tiny
towers have :data:`TINY_LAYERS` blocks and the clamped prompt depths fit
them.
"""
import contextlib
import glob
import json
import os
import os.path as osp
import tempfile

import pytest
import torch
from mmengine.config import Config

import mmpromptkd  # noqa: F401
from mmpromptkd.models.clip.clip_builder import _build_open_clip_model
from mmpromptkd.models.clip.towers import vision_tower_of
from random_clip_weights import (TINY_IMAGE_SIZE, TINY_LAYERS,
                                 TINY_PROMPT_DEPTH, RandomWeights,
                                 clamp_prompt_depths, clip_architecture,
                                 tiny_timm_trunks)
from tool_runs import REPO

CONFIGS = sorted(
    p for p in glob.glob(str(REPO / 'configs' / '**' / '*.py'),
                         recursive=True) if '_base_' not in p)
SHARED_MEMORY = '/dev/shm'
#: Text settings that scaling changes; every other one is kept.
SCALED_TEXT_KEYS = {'width', 'heads', 'layers', 'vocab_size'}


def _clip_nodes(node, where='model'):
    """(place, prompt learner config) of every CLIP source under a model."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _clip_nodes(item, f'{where}[{i}]')
    elif isinstance(node, dict):
        if isinstance(node.get('clip'), dict):
            yield where, node
        for key, value in node.items():
            if key != 'clip':
                yield from _clip_nodes(value, f'{where}.{key}')


@pytest.fixture(scope='module')
def sources():
    """Every config's prompt learners: {config name: [(place, node)]}."""
    # mmengine copies each config and _base_ file into a temporary folder
    # before reading it: in memory where there is one (7x faster here).
    saved = tempfile.tempdir
    if os.access(SHARED_MEMORY, os.W_OK):
        tempfile.tempdir = SHARED_MEMORY
    try:
        return {
            osp.basename(path):
            list(_clip_nodes(Config.fromfile(path).model.to_dict()))
            for path in CONFIGS
        }
    finally:
        tempfile.tempdir = saved


def _blocks(module) -> int:
    """Transformer blocks of an image or text tower (0: convolutional)."""
    for name in ('blocks', 'transformer'):
        inner = getattr(module, name, None)
        if name == 'transformer' and inner is not None:
            inner = inner.resblocks
        if inner is not None:
            return len(inner)
    return 0


def _kind(arch: dict, tiny: bool) -> dict:
    """What a model is, beyond its sizes."""
    towers = tiny_timm_trunks() if tiny else contextlib.nullcontext()
    with towers, torch.device('meta'):
        model = _build_open_clip_model(json.loads(json.dumps(
            arch['model_cfg'])), arch['quick_gelu'])
    visual = model.visual
    trunk = getattr(visual, 'trunk', visual)
    text = getattr(model, 'text', model)
    return dict(
        model=type(model).__name__,
        visual=type(visual).__name__,
        trunk=type(trunk).__name__,
        prompted_tower=type(vision_tower_of(visual)).__name__,
        image_pool=(getattr(visual, 'pool_type', None),
                    getattr(visual, 'attn_pool', None) is not None,
                    getattr(trunk, 'global_pool', None)),
        class_token=getattr(trunk, 'cls_token', None) is not None or
        getattr(trunk, 'class_embedding', None) is not None,
        register_tokens=getattr(trunk, 'num_reg_tokens', 0),
        text_pool=getattr(text, 'pool_type', None) or
        getattr(model, 'text_pool_type', None),
        causal=getattr(text, 'attn_mask', None) is not None,
        context_length=model.context_length,
        logit_bias=getattr(model, 'logit_bias', None) is not None,
        quick_gelu=arch['quick_gelu'],
        # Sizes, not kinds.
        blocks=(_blocks(trunk), _blocks(text)),
        trunk_image=getattr(getattr(trunk, 'patch_embed', None), 'img_size',
                            None),
    )


@pytest.fixture(scope='module')
def kinds(sources):
    """(real kind, tiny kind, real text_cfg, tiny text_cfg) of every
    distinct CLIP source, built once."""
    found = {}
    for nodes in sources.values():
        for _, node in nodes:
            key = json.dumps(node['clip'], sort_keys=True)
            if key not in found:
                real = clip_architecture(node['clip'])
                tiny = clip_architecture(node['clip'], tiny=True)
                found[key] = (_kind(real, False), _kind(tiny, True),
                              real['model_cfg'].get('text_cfg', {}),
                              tiny['model_cfg'].get('text_cfg', {}))
    return found


def test_every_family_is_covered(sources):
    assert len(sources) == len(CONFIGS) > 100
    families = {
        json.dumps(node['clip'], sort_keys=True)
        for nodes in sources.values() for _, node in nodes
    }
    # OpenAI ViT-B/16 and L/14, EVA02, two PE-Core, MobileCLIP2, SigLIP2
    # and the demo's CLIP student, teacher and SigLIP-like CLIP (a member of
    # the demo's teacher ensemble).
    assert len(families) == 10, sorted(families)


def test_tiny_model_is_of_the_config_family(sources, kinds):
    for config, nodes in sources.items():
        for where, node in nodes:
            real, tiny, real_text, tiny_text = kinds[json.dumps(
                node['clip'], sort_keys=True)]
            for key in real:
                if key not in ('blocks', 'trunk_image'):
                    assert tiny[key] == real[key], (config, where, key)
            kept = {k: v for k, v in real_text.items()
                    if k not in SCALED_TEXT_KEYS}
            assert {k: tiny_text[k] for k in kept} == kept, (config, where)


def test_tiny_towers_are_tiny(kinds):
    for real, tiny, _, _ in kinds.values():
        image, text = tiny['blocks']
        assert image in (0, TINY_LAYERS), real
        assert text == TINY_LAYERS, real
        if tiny['trunk_image'] is not None:  # a timm ViT's patch grid
            assert tuple(tiny['trunk_image']) == (TINY_IMAGE_SIZE, ) * 2
        assert TINY_PROMPT_DEPTH < TINY_LAYERS


def test_prompt_depths_are_clamped_to_the_tiny_towers(sources):
    clamped = []
    for config, nodes in sources.items():
        for where, node in nodes:
            node = dict(node)
            clamped += clamp_prompt_depths(node, where)
            for key in ('vision_prompt_depth', 'text_prompt_depth',
                        'prompt_depth'):
                assert node.get(key, 0) <= TINY_PROMPT_DEPTH, (config, key)
    assert 'model.teacher.text_prompt_depth 9 -> 2' in clamped


def test_a_hugging_face_tokenizer_is_a_small_one(tmp_path, capsys):
    weights = RandomWeights(str(tmp_path), tiny=True)
    source = weights.source(dict(model_name='ViT-L-16-SigLIP2-256',
                                 pretrained='webli'))
    folder = source['model_cfg']['text_cfg']['hf_tokenizer_name']
    assert folder == str(tmp_path / 'tokenizer-gemma')
    assert osp.isfile(osp.join(folder, 'tokenizer.json'))
    printed = capsys.readouterr().out
    assert 'a small stand-in of its layout, "gemma"' in printed
    assert source['model_cfg']['vision_cfg']['image_size'] == \
        TINY_IMAGE_SIZE


def test_a_source_without_architecture_is_refused():
    with pytest.raises(ValueError, match='names no architecture'):
        clip_architecture(dict(checkpoint='x.pth'), tiny=True)
