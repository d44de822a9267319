"""Measure what averaging the whole state dict in fp16 does to frozen weights.

See docs/reference_differences.md ("GPA scope")."""
import argparse
import math
import os.path as osp

import torch
import torch.nn.functional as F

from benchmarks.common import REPO_ROOT
from mmpromptkd.models.clip.clip_builder import build_clip


def gauss_weights(mean: float, std: float, epochs: int) -> list:
    """The official GPA weights of epochs 1..epochs, normalised to sum 1."""
    g = [math.exp(-0.5 * ((e - mean) / std)**2) for e in range(1, epochs + 1)]
    return [v / sum(g) for v in g]


def official_fp16_average(tensor: torch.Tensor, weights: list) -> torch.Tensor:
    """Accumulate ``w_e * tensor`` in fp16, as the official code does."""
    half = tensor.half()
    total = half * weights[0]  # fp16 tensor times a Python float stays fp16
    for w in weights[1:]:
        total = total + half * w
    return total


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model-name', help='an open_clip architecture with '
                        'random weights; default: the tiny teacher CLIP')
    parser.add_argument('--mean', type=float, default=15.0)
    parser.add_argument('--std', type=float, default=1.0)
    parser.add_argument('--epochs', type=int, default=20)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    if args.model_name is None:
        from mmengine.config import Config
        base = Config.fromfile(osp.join(
            REPO_ROOT, 'configs/_base_/models/promptkd_tiny-clip.py'))
        clip_cfg = dict(model_cfg=base.tiny_teacher_clip, quick_gelu=True,
                        checkpoint=base.tiny_teacher_clip_checkpoint)
        name = 'tiny teacher CLIP (checkpoints/tiny_clip)'
    else:
        from open_clip import get_model_config
        clip_cfg = dict(model_cfg=get_model_config(args.model_name),
                        quick_gelu=True)
        name = f'{args.model_name} (random weights)'
    clip = build_clip(clip_cfg)
    with torch.no_grad():  # the official weights are fp16 values
        for p in clip.parameters():
            p.copy_(p.half().float())
    weights = gauss_weights(args.mean, args.std, args.epochs)
    original = {k: v.clone() for k, v in clip.state_dict().items()}
    averaged = dict(original)
    changed = total = 0
    max_abs = max_rel = 0.0
    for key, value in original.items():
        if value.is_floating_point():
            averaged[key] = official_fp16_average(value, weights).float()
            diff = (averaged[key] - value).abs()
            changed += int((diff > 0).sum())
            total += value.numel()
            max_abs = max(max_abs, float(diff.max()))
            max_rel = max(max_rel, float(
                (diff / value.abs().clamp_min(1e-3)).max()))
    size = clip.visual.image_size
    size = size if isinstance(size, int) else size[0]
    images = torch.randn(16, 3, size, size)
    tokens = torch.randint(1, 1000, (16, clip.context_length))
    tokens[:, -1] = clip.vocab_size - 1  # an end token for argmax pooling

    def features():
        return (F.normalize(clip.encode_image(images), dim=-1),
                F.normalize(clip.encode_text(tokens), dim=-1))

    with torch.no_grad():
        before = features()
        clip.load_state_dict(averaged)
        after = features()
    print(f'model: {name}; GPA mean {args.mean}, std {args.std}, '
          f'{args.epochs} epochs; fp16 accumulation of the whole state dict')
    print(f'frozen weights changed: {changed} of {total} '
          f'({100 * changed / total:.1f} %), max abs change {max_abs:.3g}, '
          f'max relative change {max_rel:.3g}')
    for kind, b, a in zip(('image', 'text'), before, after):
        print(f'{kind} features: min cosine to the unchanged model '
              f'{float((a * b).sum(-1).min()):.6f}, max abs change '
              f'{float((a - b).abs().max()):.3g}')
