"""Depth-0 parity with open_clip of one full-size model per family.

Random weights of the real architectures (no file is read): the prompted
encoders at prompt depth 0 equal open_clip's own ``encode_image`` /
``encode_text``. The quick suite checks every open_clip config scaled
down (``test_open_clip_coverage.py``); these run with ``--real-size``.
"""
import open_clip
import pytest
import torch

from mmpromptkd.models.clip import PromptedCLIP
from small_hf_tokenizer import layout_of, write_small_hf_tokenizer

pytestmark = [pytest.mark.real_size, pytest.mark.slow]
NAMES = ['dog', 'red car']
TOLERANCE = 1e-5


@pytest.mark.parametrize('name', [
    'ViT-L-14', 'EVA02-L-14', 'PE-Core-L-14-336', 'ViT-L-16-SigLIP2-256',
    'MobileCLIP2-S2'
])
def test_full_size_depth_zero_parity(name, tmp_path):
    model_cfg = open_clip.get_model_config(name)
    quick_gelu = model_cfg.pop('quick_gelu', False)
    tokenizer = model_cfg['text_cfg'].get('hf_tokenizer_name')
    if tokenizer:  # its own is not cached here: a stand-in of its layout
        layout = layout_of(tokenizer)
        model_cfg['text_cfg']['hf_tokenizer_name'] = \
            write_small_hf_tokenizer(str(tmp_path / layout), layout)
    torch.manual_seed(0)
    model = PromptedCLIP(
        clip=dict(model_cfg=model_cfg, quick_gelu=quick_gelu))
    images = torch.randn(1, 3, *model.image_size)
    with torch.no_grad():
        pairs = [(model.encode_image(images), model.clip.encode_image(images)),
                 (model.encode_text(NAMES),
                  model.clip.encode_text(model.tokenize(NAMES)))]
    for ours, theirs in pairs:
        difference = (ours - theirs).abs().max() / theirs.abs().max()
        assert float(difference) < TOLERANCE, name
