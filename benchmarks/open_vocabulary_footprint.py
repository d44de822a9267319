"""File size and memory of an open-vocabulary student export.

An exported student carries the teacher's text features of its classes;
with ``--with-text-encoder`` it also carries the teacher's prompted text
tower (not its image tower) to encode new class names. This script builds
a distiller of one architecture with random weights (nothing downloaded),
exports it both ways, and measures side by side in one run: parameters of
the teacher, of its image and text towers, file sizes, and the peak
resident memory of a fresh process that loads each file and classifies one
batch (the full teacher + student as a third process, for comparison)::

    python -m benchmarks open_vocabulary_footprint [--arch real]
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile

import torch
from benchmarks.common import ARCHS, REPO_ROOT, distiller_cfg

#: Run in a fresh interpreter: load one model, classify a batch, report the
#: peak resident set size above that of the imports alone (Linux).
_LOAD = '''
import json, sys, torch
sys.path[:0] = {paths!r}

import mmpromptkd
from benchmarks.common import distiller_cfg, status_mib
from mmpromptkd.apis import load_exported_student
from mmpromptkd.registry import MODELS
base = status_mib('VmHWM')
resident = status_mib('VmRSS')
if sys.argv[1] == 'teacher+student':
    model = MODELS.build(distiller_cfg(sys.argv[2])).eval()
else:
    model = load_exported_student(sys.argv[1])
size = model.student.image_size
with torch.no_grad():
    model.student_features(torch.zeros(2, 3, *size))
print('RESULT', json.dumps(
    [status_mib('VmHWM') - base, status_mib('VmRSS') - resident]))
'''


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _peak_rss_mib(target: str, arch: str) -> float:
    code = _LOAD.format(paths=[REPO_ROOT])
    out = subprocess.run([sys.executable, '-c', code, target, arch],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.rsplit('RESULT ', 1)[1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', choices=ARCHS, default='real')
    parser.add_argument('--classes', type=int, default=10)
    args = parser.parse_args(argv)
    import mmpromptkd  # noqa: F401
    from mmpromptkd.apis import export_student, load_exported_student
    from mmpromptkd.registry import MODELS

    cfg = distiller_cfg(args.arch)
    torch.manual_seed(0)
    model = MODELS.build(cfg).eval()
    names = [f'class {i}' for i in range(args.classes)]
    model.prepare_text_features(names, for_training=True)
    teacher = model.teacher
    out = dict(
        arch=args.arch,
        teacher_params=_count(teacher),
        teacher_image_tower_params=_count(teacher.clip.visual) +
        sum(p.numel() for n, p in teacher.named_parameters()
            if n.startswith('vision_')),
        student_params=_count(model))
    with tempfile.TemporaryDirectory(prefix='promptkd_ov_') as tmp:
        plain, open_ = osp.join(tmp, 'plain.pth'), osp.join(tmp, 'open.pth')
        export_student(model, cfg, plain)
        export_student(model, cfg, open_, with_text_encoder=True)
        text_only = load_exported_student(open_).text_encoder
        out['text_encoder_params'] = _count(text_only)
        out['plain_file_mib'] = os.path.getsize(plain) / 2**20
        out['open_file_mib'] = os.path.getsize(open_) / 2**20
        del model, teacher, text_only
        out['rss_mib'] = {
            'exported student': _peak_rss_mib(plain, args.arch),
            'open-vocabulary student': _peak_rss_mib(open_, args.arch),
            'teacher + student': _peak_rss_mib('teacher+student', args.arch),
        }
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


if __name__ == '__main__':
    main()
