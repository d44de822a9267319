"""The shipped pre-trained tiny CLIPs: integrity, loading, zero-shot skill.

``checkpoints/tiny_clip`` holds the teacher and student made by
``tools/misc/pretrain_tiny_clip.py``. These tests check that the files match
their checksums, load strictly through the normal ``build_clip`` weight
source, and classify the target domain far above chance; plus that the
pre-training script is deterministic at a micro scale.
"""
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

import mmpromptkd  # noqa: F401
from mmpromptkd.datasets import synthetic_shapes as shapes
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
}
NUM_CLASSES = 40
PER_CLASS = 5
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# Lower bounds (%) on this fixed 200-image sample; chance is 5 % for a
# 20-class half. Measured with the shipped files (see
# checkpoints/tiny_clip/README.md): teacher 88.0 base / 76.0 novel, student
# 65.0 / 62.0. The bounds leave 16+ points for numeric drift (other torch,
# numpy or Pillow builds) and stay far above chance.
MIN_ACCURACY = {
    'teacher': dict(base=65.0, novel=60.0),
    'student': dict(base=40.0, novel=40.0),
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
        assert 'token_embedding.weight' in state and 'visual.proj' in state


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
    init = script.build_model(script.load_model_cfgs(str(micro))['student'])
    assert not torch.equal(first['visual.proj'],
                           init.visual.proj.detach().half())
    # Same bytes too (torch.save names the archive after the file only).
    assert (tmp_path / 'a' / 'SHA256SUMS').read_text() == \
        (tmp_path / 'b' / 'SHA256SUMS').read_text()
    assert sha256sums(tmp_path / 'a')['tiny_clip_student.pth'] == \
        sha256(tmp_path / 'a' / 'tiny_clip_student.pth')
