"""File size and memory of an open-vocabulary student export.

Each load in a fresh process; see docs/performance.md."""
import os.path as osp
import tempfile

import torch

from benchmarks.common import arg_parser, distiller_cfg, run_snippet

#: Load one model, classify a batch, report the resident memory above that
#: of the imports alone: peak and after (Linux).
_LOAD = '''
import json, torch
import mmpromptkd
from benchmarks.common import distiller_cfg, status_mib
from mmpromptkd.apis import load_exported_student
from mmpromptkd.registry import MODELS
base, resident = status_mib('VmHWM'), status_mib('VmRSS')
if sys.argv[1] == 'teacher+student':
    model = MODELS.build(distiller_cfg(sys.argv[2])).eval()
else:
    model = load_exported_student(sys.argv[1])
with torch.no_grad():
    model.student_features(torch.zeros(2, 3, *model.student.image_size))
print('RESULT', json.dumps(
    [status_mib('VmHWM') - base, status_mib('VmRSS') - resident]))
'''


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def main(argv=None) -> dict:
    args = arg_parser(__doc__, arch='real', classes=10).parse_args(argv)
    import mmpromptkd  # noqa: F401
    from mmpromptkd.apis import export_student, load_exported_student
    from mmpromptkd.registry import MODELS

    cfg = distiller_cfg(args.arch)
    torch.manual_seed(0)
    model = MODELS.build(cfg).eval()
    model.prepare_text_features([f'class {i}' for i in range(args.classes)],
                                for_training=True)
    teacher = model.teacher
    out = dict(
        arch=args.arch, teacher_params=_count(teacher),
        teacher_image_tower_params=_count(teacher.clip.visual) +
        sum(p.numel() for n, p in teacher.named_parameters()
            if n.startswith('vision_')),
        student_params=_count(model))
    with tempfile.TemporaryDirectory(prefix='promptkd_ov_') as tmp:
        plain, open_ = osp.join(tmp, 'plain.pth'), osp.join(tmp, 'open.pth')
        export_student(model, cfg, plain)
        export_student(model, cfg, open_, with_text_encoder=True)
        out['text_encoder_params'] = _count(
            load_exported_student(open_).text_encoder)
        out['plain_file_mib'] = osp.getsize(plain) / 2**20
        out['open_file_mib'] = osp.getsize(open_) / 2**20
        del model, teacher
        out['rss_mib'] = {
            name: run_snippet(_LOAD, target, args.arch) for name, target in (
                ('exported student', plain),
                ('open-vocabulary student', open_),
                ('teacher + student', 'teacher+student'))}
    dropped = out['teacher_params'] - out['text_encoder_params']
    print(f'arch {args.arch}: teacher {out["teacher_params"] / 1e6:.1f} M '
          f'parameters, of which the image tower '
          f'{out["teacher_image_tower_params"] / 1e6:.1f} M; the exported '
          f'text encoder keeps {out["text_encoder_params"] / 1e6:.1f} M '
          f'({dropped / 1e6:.1f} M dropped)')
    print(f'files: exported student {out["plain_file_mib"]:.1f} MiB, '
          f'open-vocabulary {out["open_file_mib"]:.1f} MiB')
    for name, (peak, resident) in out['rss_mib'].items():
        print(f'{name}: loaded and classifying a batch, {resident:.0f} MiB '
              f'resident above the imports (peak while loading '
              f'{peak:.0f} MiB)')
    return out
