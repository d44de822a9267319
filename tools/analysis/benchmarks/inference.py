"""Case 3: the exported student versus the teacher image encoder."""
import os.path as osp
import tempfile
from typing import Any, Dict

import torch

from .common import (Bench, print_table, set_classes, time_interleaved)


# 3. Inference.
def bench_inference(bench: Bench) -> Dict[str, Any]:
    """Exported student versus teacher image encoder, same stored classes."""
    from mmpromptkd.apis import export_student, load_exported_student

    args, model, device = bench.args, bench.model, bench.device
    set_classes(model, bench.names)
    bench.reset()
    batch_size = args.infer_batch_size or args.batch_size
    inputs = bench.batch(batch_size, seed_offset=1)
    with tempfile.TemporaryDirectory(prefix='promptkd_bench_export_') as tmp:
        path = osp.join(tmp, 'student.pth')
        export_student(model, bench.cfg, path)
        exported = load_exported_student(path, device=str(device))
        file_mb = osp.getsize(path) / 2**20
    model.eval()
    with torch.inference_mode():
        check = (exported(inputs, mode='tensor') -
                 model.student_logits(inputs)).abs().max().item()

        def student() -> torch.Tensor:
            return exported(inputs, mode='tensor')

        def teacher() -> torch.Tensor:
            return model.teacher_logits(inputs, model.text_features)

        timed = time_interleaved(
            dict(student=student, teacher=teacher), args.iters, args.warmup,
            device)
        s_stats, t_stats = timed['student'], timed['teacher']
    model.train()
    exported = None  # frees the exported copy before the next case
    for stats in (s_stats, t_stats):
        stats['img_s'] = batch_size / stats['median_ms'] * 1e3
    out = dict(
        batch_size=batch_size,
        student=s_stats,
        teacher=t_stats,
        speedup=s_stats['img_s'] / t_stats['img_s'],
        exported_file_mb=file_mb,
        max_abs_diff_vs_distiller=check)
    print_table('3. Inference: exported student vs teacher', [
        'model', 'ms/batch', 'img/s'
    ], [[
        'exported student', s_stats['median_ms'], s_stats['img_s']
    ], ['teacher', t_stats['median_ms'], t_stats['img_s']]], [
        f'ratio student/teacher {out["speedup"]:.2f}x; batch {batch_size}, '
        f'{len(bench.names)} classes, inference_mode',
        f'exported file {file_mb:.1f} MiB; max |logit diff| vs the '
        f'distiller {check:.2e}'
    ])
    return out
