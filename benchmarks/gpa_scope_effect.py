"""Measure what averaging the whole state dict in fp16 does to frozen weights.

Gaussian prompt aggregation (GPA) of the official PromptSRC code averages
the *whole* state dict, frozen CLIP weights included, in their dtype (fp16
with ``PREC: fp16``): after epoch e every tensor is multiplied by the
normalised weight g(e) and added to the running sum. The frozen weights
never change, so an exact average would return them unchanged; in fp16 the
products and sums round. Ours averages only the trained prompts, in fp32.
This script applies the official accumulation to a CLIP's frozen weights
and reports how far they move and how much the image and text features of
the CLIP move with them.

Example:
    python -m benchmarks gpa_scope_effect            # the tiny teacher
    python -m benchmarks gpa_scope_effect --model-name ViT-B-16
"""
import argparse
import math
import os.path as osp

import torch
import torch.nn.functional as F

from benchmarks.common import REPO_ROOT as REPO
from mmpromptkd.models.clip.clip_builder import build_clip


def gauss_weights(mean: float, std: float, epochs: int) -> list:
    """The official GPA weights of epochs 1..epochs, normalised to sum 1."""
    g = [math.exp(-0.5 * ((e - mean) / std)**2) for e in range(1, epochs + 1)]
    total = sum(g)
    return [v / total for v in g]


def official_fp16_average(tensor: torch.Tensor, weights: list) -> torch.Tensor:
    """Accumulate ``w_e * tensor`` in fp16, as the official code does."""
    half = tensor.half()
    total = None
    for w in weights:
        term = half * w  # fp16 tensor times a Python float stays fp16
        total = term if total is None else total + term
    return total


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model-name', default=None,
                        help='an open_clip architecture with random weights '
                        '(e.g. ViT-B-16); default: the tiny teacher CLIP')
    parser.add_argument('--mean', type=float, default=15.0)
    parser.add_argument('--std', type=float, default=1.0)
    parser.add_argument('--epochs', type=int, default=20)
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    if args.model_name is None:
        from mmengine.config import Config
        base = Config.fromfile(
            osp.join(REPO, 'configs/_base_/models/promptkd_tiny-clip.py'))
        clip_cfg = dict(model_cfg=base.tiny_teacher_clip, quick_gelu=True,
                        checkpoint=base.tiny_teacher_clip_checkpoint)
        name = 'tiny teacher CLIP (checkpoints/tiny_clip)'
    else:
        from open_clip import get_model_config
        clip_cfg = dict(model_cfg=get_model_config(args.model_name),
                        quick_gelu=True)
        name = f'{args.model_name} (random weights)'
    clip = build_clip(clip_cfg)
    # The official weights are fp16 values: start from those.
    with torch.no_grad():
        for p in clip.parameters():
            p.copy_(p.half().float())
    weights = gauss_weights(args.mean, args.std, args.epochs)
    original = {k: v.clone() for k, v in clip.state_dict().items()}
    changed = total = 0
    max_abs = max_rel = 0.0
    averaged = {}
    for key, value in original.items():
        if not value.is_floating_point():
            averaged[key] = value
            continue
        avg = official_fp16_average(value, weights).float()
        averaged[key] = avg
        diff = (avg - value).abs()
        changed += int((diff > 0).sum())
        total += value.numel()
        max_abs = max(max_abs, float(diff.max()))
        rel = diff / value.abs().clamp_min(1e-3)
        max_rel = max(max_rel, float(rel.max()))

    size = clip.visual.image_size
    size = size if isinstance(size, int) else size[0]
    images = torch.randn(16, 3, size, size)
    tokens = torch.randint(1, 1000, (16, clip.context_length))
    tokens[:, -1] = clip.vocab_size - 1  # an end token for argmax pooling
    with torch.no_grad():
        before = (F.normalize(clip.encode_image(images), dim=-1),
                  F.normalize(clip.encode_text(tokens), dim=-1))
        clip.load_state_dict(averaged)
        after = (F.normalize(clip.encode_image(images), dim=-1),
                 F.normalize(clip.encode_text(tokens), dim=-1))
    print(f'model: {name}; GPA mean {args.mean}, std {args.std}, '
          f'{args.epochs} epochs; fp16 accumulation of the whole state dict')
    print(f'frozen weights changed: {changed} of {total} '
          f'({100 * changed / total:.1f} %), max abs change {max_abs:.3g}, '
          f'max relative change {max_rel:.3g}')
    for kind, b, a in (('image', before[0], after[0]),
                       ('text', before[1], after[1])):
        cos = (a * b).sum(-1)
        print(f'{kind} features: min cosine to the unchanged model '
              f'{float(cos.min()):.6f}, max abs change '
              f'{float((a - b).abs().max()):.3g}')


if __name__ == '__main__':
    main()
