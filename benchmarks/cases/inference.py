"""Cases of the exported student: 3 (inference) and 9 (ONNX) of
docs/performance.md."""
import os.path as osp
import tempfile
from typing import Any, Dict

import torch

from ..common import Bench, print_table, set_classes, time_interleaved


def _export(bench: Bench, folder: str) -> str:
    """Export the shared model (reset, then put in eval mode)."""
    from mmpromptkd.apis import export_student
    set_classes(bench.model, bench.names)
    bench.reset()
    path = osp.join(folder, 'student.pth')
    export_student(bench.model, bench.cfg, path)
    bench.model.eval()
    return path


def bench_inference(bench: Bench) -> Dict[str, Any]:
    """3. Exported student versus teacher image encoder, same classes."""
    from mmpretrain.structures import DataSample

    from mmpromptkd.apis import load_exported_student
    from mmpromptkd.models.utils import logits_to_data_samples

    args, model = bench.args, bench.model
    batch_size = args.infer_batch_size or args.batch_size
    inputs = bench.batch(batch_size, seed_offset=1)
    with tempfile.TemporaryDirectory(prefix='promptkd_bench_export_') as tmp:
        path = _export(bench, tmp)
        exported = load_exported_student(path, device=str(bench.device))
        file_mb = osp.getsize(path) / 2**20
    with torch.inference_mode():
        check = (exported(inputs, mode='tensor') -
                 model.student_logits(inputs)).abs().max().item()
        timed = time_interleaved(
            dict(student=lambda: exported(inputs, mode='tensor'),
                 teacher=lambda: model.teacher_logits(
                     inputs, model.text_features)),
            args.iters, args.warmup, bench.device, batch_size)
        logits = exported(inputs, mode='tensor')

        def setters() -> list:
            """``predict``'s DataSamples made with mmpretrain's setters."""
            scores = logits.softmax(-1)
            return [DataSample().set_pred_score(s).set_pred_label(label)
                    for s, label in zip(scores, scores.argmax(dim=-1))]

        predictions = time_interleaved(
            dict(ours=lambda: logits_to_data_samples(logits),
                 setters=setters), args.iters, args.warmup, bench.device)
        same = all(torch.equal(a.pred_score, b.pred_score)
                   and torch.equal(a.pred_label, b.pred_label)
                   for a, b in zip(logits_to_data_samples(logits),
                                   setters()))
    predictions.update(speedup=predictions['setters']['median_ms'] /
                       predictions['ours']['median_ms'], same_samples=same)
    model.train()
    exported = None  # frees the exported copy before the next case
    s_stats, t_stats = timed['student'], timed['teacher']
    out = dict(batch_size=batch_size, **timed,
               speedup=s_stats['img_s'] / t_stats['img_s'],
               exported_file_mb=file_mb, max_abs_diff_vs_distiller=check,
               predictions=predictions)
    print_table('3. Inference: exported student vs teacher', [
        'model', 'ms/batch', 'img/s'
    ], [['exported student', s_stats['median_ms'], s_stats['img_s']],
        ['teacher', t_stats['median_ms'], t_stats['img_s']]], [
        f'ratio student/teacher {out["speedup"]:.2f}x; batch {batch_size}, '
        f'{len(bench.names)} classes; exported file {file_mb:.1f} MiB; max '
        f'|logit diff| vs the distiller {check:.2e}',
        f'predictions as DataSamples: {predictions["ours"]["median_ms"]:.3f}'
        f' ms per batch vs {predictions["setters"]["median_ms"]:.3f} ms '
        f'with mmpretrain\'s setters ({predictions["speedup"]:.2f}x)'])
    return out


def bench_onnx(bench: Bench) -> Dict[str, Any]:
    """9. ONNX student (onnxruntime, CPU) vs PyTorch eager vs teacher."""
    try:
        import onnxruntime as ort
    except ImportError:
        print('\n9. ONNX: skipped, onnxruntime is not installed '
              '(pip install -e ".[deploy]")')
        return dict(skipped='onnxruntime is not installed')
    from mmpromptkd.apis import StudentGraph, load_exported_student

    args, model = bench.args, bench.model
    batch_size = args.infer_batch_size or args.batch_size
    gen = torch.Generator().manual_seed(args.seed + 9)
    pixels = torch.rand((batch_size, 3) + bench.image_size,
                        generator=gen) * 255
    with tempfile.TemporaryDirectory(prefix='promptkd_bench_onnx_') as tmp:
        graph = StudentGraph(load_exported_student(_export(bench, tmp)))
        graph.eval()
        onnx_path = osp.join(tmp, 'student.onnx')
        with open(onnx_path, 'wb') as f:
            f.write(graph.export_onnx().SerializeToString())
        onnx_mb = osp.getsize(onnx_path) / 2**20
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(onnx_path, options,
                                       providers=['CPUExecutionProvider'])
    feed = {'images': pixels.numpy()}
    normalised = ((pixels - graph.mean) / graph.std).to(bench.device)
    with torch.inference_mode():
        diff = float((torch.from_numpy(session.run(None, feed)[0]) -
                      graph(pixels)).abs().max())
        timed = time_interleaved(
            dict(onnxruntime=lambda: session.run(None, feed),
                 eager=lambda: graph(pixels),
                 teacher=lambda: model.teacher_logits(normalised,
                                                      model.text_features)),
            args.iters, args.warmup, bench.device, batch_size)
    model.train()
    ort_img_s = timed['onnxruntime']['img_s']
    out = dict(batch_size=batch_size, onnx_file_mb=onnx_mb,
               max_abs_logit_diff=diff,
               onnxruntime_vs_eager=ort_img_s / timed['eager']['img_s'],
               onnxruntime_vs_teacher=ort_img_s / timed['teacher']['img_s'],
               **timed)
    print_table(
        '9. ONNX student (onnxruntime) vs PyTorch eager vs teacher',
        ['model', 'ms/batch', 'img/s'],
        [[name, fig['median_ms'], fig['img_s']]
         for name, fig in timed.items()], [
            f'onnxruntime / eager {out["onnxruntime_vs_eager"]:.2f}x, / '
            f'teacher {out["onnxruntime_vs_teacher"]:.2f}x; batch '
            f'{batch_size}; file {onnx_mb:.1f} MiB; max |logit diff| vs '
            f'PyTorch {diff:.2e}'])
    return out
