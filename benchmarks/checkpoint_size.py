"""Bytes of a distiller training checkpoint with and without frozen weights.

See docs/performance.md."""
import io
from types import SimpleNamespace

import torch

import mmpromptkd  # noqa: F401
from benchmarks.common import arg_parser, distiller_cfg
from mmpromptkd.engine.hooks import SafeCheckpointHook
from mmpromptkd.registry import MODELS


def checkpoint_bytes(model, save_frozen_weights: bool) -> int:
    """Size of the serialised training checkpoint of ``model``."""
    checkpoint = dict(meta={}, state_dict=model.state_dict(), optimizer=dict(
        state={i: dict(momentum_buffer=torch.zeros_like(p))
               for i, p in enumerate(model.trainable_parameters().values())}))
    SafeCheckpointHook(interval=1, save_frozen_weights=save_frozen_weights) \
        .before_save_checkpoint(SimpleNamespace(model=model), checkpoint)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.tell()


def main(argv=None) -> None:
    args = arg_parser(__doc__, arch='real', classes=1000).parse_args(argv)
    cfg = distiller_cfg(args.arch)
    dim = cfg['teacher']['clip']['model_cfg']['embed_dim']
    cfg.update(teacher=None, projector=dict(type='FeatureProjector',
                                            out_channels=dim))
    model = MODELS.build(cfg)
    model.text_features = torch.randn(args.classes,
                                      model.text_features.shape[1])
    model.class_names = [f'class {i}' for i in range(args.classes)]
    full = checkpoint_bytes(model, True)
    slim = checkpoint_bytes(model, False)
    print(f'{args.arch} student, {args.classes} classes: with frozen '
          f'weights {full / 2**20:.1f} MiB, without {slim / 2**20:.2f} MiB '
          f'({full / slim:.0f}x smaller)')
