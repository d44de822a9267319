"""Export a PromptKD student to ONNX: pixels -> logits over its classes.

See README.md, "Deploy a student alone"; needs ``pip install -e ".[deploy]"``.
"""
import argparse
import importlib
import json
import os.path as osp
import sys

_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path[:0] = [_REPO, osp.join(_REPO, 'tools', 'misc')]

import torch  # noqa: E402

from mmpromptkd.apis import (StudentGraph, load_exported_student,  # noqa: E402
                             preprocessing)
from mmpromptkd.fileio import atomic_write  # noqa: E402
from run_cli import output_beside  # noqa: E402

#: The opset of torch's dynamo exporter, run by every current onnxruntime.
DEFAULT_OPSET = 18


def require(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise SystemExit(f'{module} is not installed: pip install -e '
                         f'".[deploy]" (onnx, onnxruntime, onnxscript)') from e


def max_difference(path: str, graph: StudentGraph,
                   batch_sizes=(1, 7)) -> float:
    """Largest |onnxruntime - PyTorch| over random batches."""
    ort = require('onnxruntime')
    session = ort.InferenceSession(
        path, providers=['CPUExecutionProvider'])
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for batch in batch_sizes:
        images = torch.rand(
            batch, 3, *graph.image_size, generator=generator) * 255
        with torch.no_grad():
            expected = graph(images)
        expected = expected if isinstance(expected, tuple) else (expected, )
        got = session.run(None, {'images': images.numpy()})
        for ours, theirs in zip(got, expected):
            if ours.shape != tuple(theirs.shape):
                raise RuntimeError(f'onnxruntime gave shape {ours.shape}, '
                                   f'PyTorch {tuple(theirs.shape)}')
            worst = max(worst,
                        float(abs(torch.from_numpy(ours) - theirs).max()))
    return worst


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('student', help='exported student (.pth)')
    parser.add_argument('out', help='output ONNX file; OUT.json beside it')
    parser.add_argument('--features', action='store_true',
                        help='also output the normalised image features')
    parser.add_argument(
        '--classes',
        help='comma-separated class names of the graph (default: the stored '
        'ones); new names need an open-vocabulary export')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET,
                        help=f'ONNX opset (default {DEFAULT_OPSET})')
    parser.add_argument(
        '--force', action='store_true', help='replace existing outputs')
    args = parser.parse_args(argv)

    onnx = require('onnx')
    require('onnxruntime')
    try:
        meta_path = output_beside(args.out, '.json', args.force)
    except ValueError as e:
        parser.error(f'{e} (.onnx)')

    model = load_exported_student(args.student)
    if args.classes is not None:
        try:
            model.select_classes([c.strip() for c in args.classes.split(',')])
        except ValueError as e:
            parser.error(f'--classes: {e}')
    graph = StudentGraph(model, with_features=args.features)
    proto = graph.export_onnx(args.opset)
    proto.metadata_props.add(
        key='class_names',
        value=json.dumps(list(graph.class_names), ensure_ascii=False))
    onnx.checker.check_model(proto)
    meta = dict(
        class_names=list(graph.class_names),
        input=dict(name='images', shape=['batch', 3, *graph.image_size],
                   channels='RGB', range=[0, 255], dtype='float32'),
        # The test pipeline's resize and crop; normalising is in the graph.
        preprocessing=preprocessing(model),
        outputs=['logits', 'features'] if args.features else ['logits'],
        opset=args.opset,
        source=osp.abspath(args.student))
    atomic_write(proto.SerializeToString(), args.out)
    atomic_write(json.dumps(meta, indent=2, ensure_ascii=False), meta_path)
    diff = max_difference(args.out, graph)
    print(f'exported {args.out} ({len(graph.class_names)} classes, input '
          f'{meta["input"]["shape"]}, opset {args.opset}) and {meta_path}; '
          f'onnxruntime vs PyTorch on batches of 1 and 7: max |diff| '
          f'{diff:.2e}')


if __name__ == '__main__':
    main()
