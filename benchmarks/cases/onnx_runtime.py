"""Case 9: the student in onnxruntime, in PyTorch, and the teacher."""
import os.path as osp
import tempfile
from typing import Any, Dict

import torch

from ..common import Bench, print_table, set_classes, time_interleaved


def bench_onnx(bench: Bench) -> Dict[str, Any]:
    """images/s of the ONNX student (onnxruntime, CPU) versus the same
    graph in PyTorch eager and the teacher's image encoder, one batch of
    pixels, interleaved; and the largest logit difference."""
    try:
        import onnxruntime as ort
    except ImportError:
        print('\n9. ONNX: skipped, onnxruntime is not installed '
              '(pip install -e ".[deploy]")')
        return dict(skipped='onnxruntime is not installed')
    from mmpromptkd.apis import (StudentGraph, export_student,
                                 load_exported_student)

    args, model = bench.args, bench.model
    set_classes(model, bench.names)
    bench.reset()
    model.eval()
    batch_size = args.infer_batch_size or args.batch_size
    gen = torch.Generator().manual_seed(args.seed + 9)
    pixels = torch.rand(
        (batch_size, 3) + bench.image_size, generator=gen) * 255
    with tempfile.TemporaryDirectory(prefix='promptkd_bench_onnx_') as tmp:
        path = osp.join(tmp, 'student.pth')
        export_student(model, bench.cfg, path)
        graph = StudentGraph(load_exported_student(path)).eval()
        onnx_path = osp.join(tmp, 'student.onnx')
        with open(onnx_path, 'wb') as f:
            f.write(graph.export_onnx().SerializeToString())
        onnx_mb = osp.getsize(onnx_path) / 2**20
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(
            onnx_path, options, providers=['CPUExecutionProvider'])
    feed = {'images': pixels.numpy()}
    normalised = ((pixels - graph.mean) / graph.std).to(bench.device)
    with torch.inference_mode():
        diff = float((torch.from_numpy(session.run(None, feed)[0]) -
                      graph(pixels)).abs().max())
        timed = time_interleaved(
            dict(
                onnxruntime=lambda: session.run(None, feed),
                eager=lambda: graph(pixels),
                teacher=lambda: model.teacher_logits(normalised,
                                                     model.text_features)),
            args.iters, args.warmup, bench.device)
    model.train()
    for stats in timed.values():
        stats['img_s'] = batch_size / stats['median_ms'] * 1e3
    out = dict(
        batch_size=batch_size,
        onnx_file_mb=onnx_mb,
        max_abs_logit_diff=diff,
        onnxruntime_vs_eager=timed['onnxruntime']['img_s'] /
        timed['eager']['img_s'],
        onnxruntime_vs_teacher=timed['onnxruntime']['img_s'] /
        timed['teacher']['img_s'],
        **timed)
    print_table('9. ONNX student (onnxruntime) vs PyTorch eager vs teacher',
                ['model', 'ms/batch', 'img/s'], [
                    [name, timed[name]['median_ms'], timed[name]['img_s']]
                    for name in ('onnxruntime', 'eager', 'teacher')
                ], [
                    f'onnxruntime / eager {out["onnxruntime_vs_eager"]:.2f}x,'
                    f' onnxruntime / teacher '
                    f'{out["onnxruntime_vs_teacher"]:.2f}x; batch '
                    f'{batch_size}, {len(bench.names)} classes, CPU',
                    f'ONNX file {onnx_mb:.1f} MiB; max |logit diff| '
                    f'onnxruntime vs PyTorch {diff:.2e}'
                ])
    return out
