"""No name resolves through a hub: ``hf-hub:`` names are refused by key.

The network is guarded: any name lookup or connection raises an exception
that no ``except Exception`` can swallow, so a test passes only because
the name was refused before anything was fetched, never because the
connection failed.
"""
import copy
import socket

import pytest
import torch

from mmpromptkd.models.clip import build_clip
from mmpromptkd.models.clip.clip_builder import pretrained_normalization
from mmpromptkd.registry import MODELS

HUB_MODEL = 'hf-hub:timm/ViT-B-16-SigLIP'


class NetworkReached(BaseException):
    """Raised by the guarded network calls."""


@pytest.fixture
def no_network(monkeypatch):
    """Every lookup or connection raises :class:`NetworkReached`."""
    reached = []

    def refuse(*args, **kwargs):
        reached.append(args)
        raise NetworkReached(repr(args))

    monkeypatch.setattr(socket, 'getaddrinfo', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket.socket, 'connect_ex', refuse)
    # Offline settings would hide a fetch attempt: make sure it is tried.
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    yield reached
    assert not reached, f'the network was reached: {reached}'


def test_a_hub_fetch_is_seen_by_the_guard_live(no_network):
    """The guard is live: open_clip itself does reach for the hub."""
    import open_clip
    with pytest.raises(NetworkReached):
        open_clip.get_model_config(HUB_MODEL)
    no_network.clear()


def test_an_open_clip_hub_model_name_is_refused_by_key(no_network):
    with pytest.raises(ValueError, match=f'clip.model_name: "{HUB_MODEL}" '
                       'names a model on the Hugging Face hub'):
        build_clip(dict(model_name=HUB_MODEL, pretrained='webli'))
    with pytest.raises(ValueError, match='clip.model_name: "hf-hub:'):
        pretrained_normalization(dict(model_name=HUB_MODEL,
                                      pretrained='webli'))


def test_a_timm_hub_tower_is_refused_by_key(no_network, tiny_clip_cfg):
    model_cfg = copy.deepcopy(tiny_clip_cfg['model_cfg'])
    model_cfg['vision_cfg'] = dict(
        timm_model_name='hf-hub:timm/vit_tiny_patch16_224.augreg_in21k',
        timm_model_pretrained=False, image_size=32)
    with pytest.raises(ValueError, match=r'clip.model_cfg.vision_cfg.'
                       'timm_model_name: "hf-hub:timm/vit_tiny'):
        build_clip(dict(model_cfg=model_cfg))


def test_a_hub_tokenizer_is_refused_by_key(no_network, tiny_clip_cfg):
    model_cfg = copy.deepcopy(tiny_clip_cfg['model_cfg'])
    model_cfg['text_cfg']['hf_tokenizer_name'] = 'hf-hub:google/siglip'
    with pytest.raises(ValueError, match=r'clip.model_cfg.text_cfg.'
                       'hf_tokenizer_name: "hf-hub:google/siglip"'):
        MODELS.build(dict(type='PromptedCLIP', clip=dict(model_cfg=model_cfg),
                          text_prompt_depth=1))


def test_a_hub_name_in_a_stored_config_is_refused(no_network, tmp_path,
                                                  tiny_clip_cfg):
    """An exported student whose stored config names a hub tower."""
    from mmpromptkd.apis import export_student, load_exported_student
    cfg = dict(type='PromptKDDistiller',
               student=dict(clip=tiny_clip_cfg, vision_prompt_depth=1),
               teacher=None,
               projector=dict(type='FeatureProjector', out_channels=32))
    model = MODELS.build(cfg)
    model.use_cached_text_features(['a', 'b'], torch.randn(2, 32))
    path = str(tmp_path / 'student.pth')
    export_student(model, cfg, path)
    payload = torch.load(path, weights_only=True)
    payload['meta']['model']['student']['clip']['model_cfg']['vision_cfg'][
        'timm_model_name'] = 'hf-hub:timm/vit_tiny_patch16_224'
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r'timm_model_name.*hf-hub:'):
        load_exported_student(path)
