"""Case 3: the exported student versus the teacher image encoder."""
import os.path as osp
import tempfile
from typing import Any, Dict

import torch
from mmpretrain.structures import DataSample

from mmpromptkd.models.utils import logits_to_data_samples
from ..common import (Bench, print_table, set_classes, time_interleaved)


# 3. Inference.
def _time_predictions(logits: torch.Tensor, args) -> Dict[str, Any]:
    """``predict``'s DataSamples: ours versus mmpretrain's setters."""

    def setters() -> list:
        scores = logits.softmax(-1)
        labels = scores.argmax(dim=-1)
        return [
            DataSample().set_pred_score(s).set_pred_label(label)
            for s, label in zip(scores, labels)
        ]

    timed = time_interleaved(
        dict(ours=lambda: logits_to_data_samples(logits), setters=setters),
        args.iters, args.warmup, logits.device)
    ours, theirs = logits_to_data_samples(logits), setters()
    same = all(
        torch.equal(a.pred_score, b.pred_score)
        and torch.equal(a.pred_label, b.pred_label)
        for a, b in zip(ours, theirs))
    return dict(timed, speedup=timed['setters']['median_ms'] /
                timed['ours']['median_ms'], same_samples=same)


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
        predictions = _time_predictions(student(), args)
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
        max_abs_diff_vs_distiller=check,
        predictions=predictions)
    print_table('3. Inference: exported student vs teacher', [
        'model', 'ms/batch', 'img/s'
    ], [[
        'exported student', s_stats['median_ms'], s_stats['img_s']
    ], ['teacher', t_stats['median_ms'], t_stats['img_s']]], [
        f'ratio student/teacher {out["speedup"]:.2f}x; batch {batch_size}, '
        f'{len(bench.names)} classes, inference_mode',
        f'exported file {file_mb:.1f} MiB; max |logit diff| vs the '
        f'distiller {check:.2e}',
        f'predictions as DataSamples: {predictions["ours"]["median_ms"]:.3f}'
        f' ms per batch (set_field) vs '
        f'{predictions["setters"]["median_ms"]:.3f} ms with DataSample\'s '
        f'set_pred_score / set_pred_label ({predictions["speedup"]:.2f}x)'
    ])
    return out
