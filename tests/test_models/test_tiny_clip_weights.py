"""The shipped pre-trained tiny CLIPs: integrity, loading, zero-shot skill.

``checkpoints/tiny_clip`` holds the teacher and student CLIPs and the
SigLIP-style model of a second family made by
``tools/misc/pretrain_tiny_clip.py``. These tests check that the files match
their checksums, load strictly through the normal ``build_clip`` weight
source, and classify the target domain far above chance; plus that the
pre-training script is deterministic at a micro scale.
"""
import hashlib
import math
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from mmengine.config import Config

import mmpromptkd  # noqa: F401
import synthetic_shapes as shapes
from mmpromptkd.models.clip import PromptedCLIP
from tool_scripts import load_tool

REPO = Path(__file__).resolve().parents[2]
CKPT_DIR = 'checkpoints/tiny_clip'
SUMS = REPO / CKPT_DIR / 'SHA256SUMS'
MODEL_CFG = REPO / 'configs' / '_base_' / 'models' / 'promptkd_tiny-clip.py'
SCRIPT = REPO / 'tools' / 'misc' / 'pretrain_tiny_clip.py'
FILES = {
    'teacher': ('tiny_teacher_clip', 'tiny_clip_teacher.pth'),
    'student': ('tiny_student_clip', 'tiny_clip_student.pth'),
    'siglip': ('tiny_siglip_clip', 'tiny_siglip_clip.pth'),
}
NUM_CLASSES = 40
PER_CLASS = 5
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# Lower bounds (%) on this fixed 200-image sample; chance is 5 % for a
# 20-class half. Measured with the shipped files (see
# checkpoints/tiny_clip/README.md): teacher 88.0 base / 76.0 novel, student
# 65.0 / 62.0, SigLIP-style 67.0 / 68.0. The bounds leave 16+ points for
# numeric drift (other torch, numpy or Pillow builds) and stay far above
# chance.
MIN_ACCURACY = {
    'teacher': dict(base=65.0, novel=60.0),
    'student': dict(base=40.0, novel=40.0),
    'siglip': dict(base=45.0, novel=45.0),
}


def model_cfg(which: str) -> dict:
    """The open_clip config dict of a model, read from the config file."""
    cfg = Config.fromfile(str(MODEL_CFG))
    return cfg[FILES[which][0]].to_dict()


@pytest.fixture(scope='module')
def target_sample():
    """5 target-domain test images per class (CLIP-normalised) + labels."""
    names = shapes.list_class_names(NUM_CLASSES)
    images, labels = [], []
    for label, name in enumerate(names):
        for index in range(PER_CLASS):
            image = shapes.render_image(
                name, 32, seed=0, split='test', index=index)
            images.append(np.asarray(image))
            labels.append(label)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        CLIP_STD).view(1, 3, 1, 1)
    return x, torch.tensor(labels), names


def sha256sums(folder: Path) -> dict:
    """Digest by file name, as ``sha256sum`` writes them in SHA256SUMS."""
    lines = (folder / 'SHA256SUMS').read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines)}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class TestIntegrity:

    def test_shipped_files_match_sums(self):
        listed = sha256sums(REPO / CKPT_DIR)
        assert sorted(listed) == sorted(f for _, f in FILES.values())
        for name, digest in listed.items():
            assert sha256(REPO / CKPT_DIR / name) == digest

    def test_config_points_at_shipped_files(self):
        cfg = Config.fromfile(str(MODEL_CFG))
        for which, (var, name) in FILES.items():
            path = Path(cfg[f'{var}_checkpoint']).resolve()
            assert path == (REPO / CKPT_DIR / name).resolve(), which

    @pytest.mark.parametrize('which', list(FILES))
    def test_plain_fp16_state_dict(self, which):
        # Key names and shapes are checked by the strict load below.
        state = torch.load(
            REPO / CKPT_DIR / FILES[which][1], map_location='cpu',
            weights_only=True)
        assert all(isinstance(v, torch.Tensor) for v in state.values())
        assert {v.dtype for v in state.values()} == {torch.float16}
        assert 'token_embedding.weight' in state
        if which == 'siglip':
            # timm tower with an attention-pool head; a logit bias.
            assert 'visual.trunk.attn_pool.latent' in state
            assert 'logit_bias' in state
        else:
            assert 'visual.proj' in state and 'logit_bias' not in state


@pytest.mark.parametrize('which', list(FILES))
def test_loads_and_classifies_zero_shot(which, target_sample, monkeypatch):
    # The relative path of the configs resolves against the repo root.
    monkeypatch.chdir(REPO)
    clip = dict(
        model_cfg=model_cfg(which),
        quick_gelu=True,
        checkpoint=f'{CKPT_DIR}/{FILES[which][1]}')
    # Built through build_clip, which loads strictly (every key and shape).
    model = PromptedCLIP(clip=clip)
    images, labels, names = target_sample
    n_base = math.ceil(NUM_CLASSES / 2)
    with torch.no_grad():
        # Depth 0: plain CLIP with the prompt "a photo of a {}.".
        image = model.encode_image(images, normalize=True)
        text = model.encode_text(names, normalize=True)
    logits = image @ text.t()
    base = labels < n_base
    accuracy = dict(
        base=100 * (logits[base, :n_base].argmax(1) == labels[base]
                    ).float().mean().item(),
        novel=100 * (logits[~base, n_base:].argmax(1) + n_base
                     == labels[~base]).float().mean().item())
    for half, bound in MIN_ACCURACY[which].items():
        assert accuracy[half] > bound, (which, accuracy)


def test_pretraining_is_deterministic(tmp_path):
    micro = tmp_path / 'micro.py'
    micro.write_text(
        'tiny_teacher_clip = dict(embed_dim=32, vision_cfg=dict('
        'image_size=32, patch_size=8, width=32, layers=1, head_width=32), '
        'text_cfg=dict(context_length=77, vocab_size=49408, width=32, '
        'heads=1, layers=1))\n'
        'tiny_student_clip = tiny_teacher_clip\n')
    script = load_tool(SCRIPT)

    def run(seed: int, out: Path) -> dict:
        script.main([
            '--model-cfg', str(micro), '--which', 'student', '--steps', '3',
            '--batch-size', '8', '--images-per-class', '1', '--seed',
            str(seed), '--eval-per-class', '0', '--out-dir', str(out)
        ])
        return torch.load(out / 'tiny_clip_student.pth', weights_only=True)

    first = run(3, tmp_path / 'a')
    second = run(3, tmp_path / 'b')
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key
    # Trained, not only initialised alike: weights left their seeded init.
    torch.manual_seed(3)
    init = script.build_model(
        script.load_model_cfgs(str(micro), ['student'])['student'])
    assert not torch.equal(first['visual.proj'],
                           init.visual.proj.detach().half())
    # Same bytes too (torch.save names the archive after the file only).
    assert (tmp_path / 'a' / 'SHA256SUMS').read_text() == \
        (tmp_path / 'b' / 'SHA256SUMS').read_text()
    assert sha256sums(tmp_path / 'a')['tiny_clip_student.pth'] == \
        sha256(tmp_path / 'a' / 'tiny_clip_student.pth')


MICRO_SIGLIP = (
    "tiny_siglip_clip = dict(embed_dim=96, init_logit_bias=-5.0, "
    "vision_cfg=dict(image_size=32, "
    "timm_model_name='vit_tiny_patch8_32_map_shapes', "
    "timm_model_pretrained=False, timm_pool='map', timm_proj='none'), "
    "text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=1, "
    "layers=1, no_causal_mask=True, pool_type='last', proj_bias=True))\n")


def test_sigmoid_loss_value():
    script = load_tool(SCRIPT)
    torch.manual_seed(0)
    image, text = torch.randn(3, 4), torch.randn(3, 4)
    scale, bias = torch.tensor(math.log(7.0)), torch.tensor(-2.0)
    got = script.sigmoid_loss(image, text, scale, bias)
    # Independently: -log sigmoid(+z) for matching pairs, -log sigmoid(-z)
    # for the others, summed over pairs, divided by the batch size.

    def unit(v):
        norm = math.sqrt(sum(x * x for x in v))
        return [x / norm for x in v]

    i, t = list(map(unit, image.tolist())), list(map(unit, text.tolist()))
    total = 0.0
    for a in range(3):
        for b in range(3):
            z = 7.0 * sum(x * y for x, y in zip(i[a], t[b])) - 2.0
            sign = 1.0 if a == b else -1.0
            total += math.log(1.0 + math.exp(-sign * z))
    assert got.item() == pytest.approx(total / 3, rel=1e-5)


def test_siglip_pretraining_text_path_and_bias(tmp_path):
    micro = tmp_path / 'micro.py'
    micro.write_text(MICRO_SIGLIP)
    script = load_tool(SCRIPT)
    cfg = script.load_model_cfgs(str(micro), ['siglip'])['siglip']
    torch.manual_seed(0)
    model = script.build_model(cfg).eval()
    captions = ['a photo of a red striped circle.', 'a small blue square.']
    text = script.CompactText(model, captions)
    # Bidirectional, pooled at the last position: every position is kept,
    # and the compact path equals open_clip's encode_text.
    assert text.length == 16
    tokens = open_clip.tokenize(captions, context_length=16)
    with torch.no_grad():
        assert torch.allclose(
            text(torch.arange(2)), model.encode_text(tokens), atol=1e-6)
    script.main([
        # A large lr moves the bias beyond the fp16 rounding of the file.
        '--model-cfg', str(micro), '--which', 'siglip', '--steps', '2',
        '--lr', '0.05',
        '--batch-size', '8', '--images-per-class', '1', '--eval-per-class',
        '0', '--out-dir', str(tmp_path / 'out')
    ])
    state = torch.load(
        tmp_path / 'out' / 'tiny_siglip_clip.pth', weights_only=True)
    # The sigmoid loss trained the bias (it starts at -5).
    assert state['logit_bias'].item() != -5.0
    assert sha256sums(tmp_path / 'out') == {
        'tiny_siglip_clip.pth': sha256(tmp_path / 'out' /
                                       'tiny_siglip_clip.pth')
    }


def test_demo_tower_has_no_pretrained_weights():
    import timm

    import mmpromptkd.models.clip.tiny_timm_vit as tower
    tower.register_tiny_shapes_vit(tower.TINY_SHAPES_VIT)
    trunk = timm.create_model(tower.TINY_SHAPES_VIT, num_classes=0)
    out = trunk(torch.zeros(1, 3, 32, 32))
    assert out.shape == (1, 96)
    with pytest.raises(ValueError, match='no pretrained weights'):
        timm.create_model(tower.TINY_SHAPES_VIT, pretrained=True)
