"""Classify images with an exported student and print a table.

Needs only the file of ``tools/model_converters/export_student.py``.
"""
import argparse
import json
import os.path as osp
import sys

_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path[:0] = [_REPO, osp.join(_REPO, 'tools', 'misc')]

from mmpromptkd.apis import StudentInferencer  # noqa: E402
from mmpromptkd.fileio import atomic_write  # noqa: E402
from run_cli import new_output  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--model', required=True,
                        help='exported student (.pth)')
    parser.add_argument(
        '--classes',
        help='comma-separated class names to choose from (default: the '
        'stored ones)')
    parser.add_argument('--topk', type=int, default=1,
                        help='classes shown per image')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--out', help='also write the results as JSON')
    parser.add_argument('--force', action='store_true',
                        help='replace an existing --out file')
    args = parser.parse_args(argv)
    if args.out:
        try:
            new_output(args.out, args.force, [args.model, *args.images])
        except ValueError as e:
            parser.error(str(e))
    if args.topk < 1:
        parser.error(f'--topk must be >= 1, got {args.topk}')
    classes = None if args.classes is None else [  # checked by the model
        c.strip() for c in args.classes.split(',')]
    missing = [p for p in args.images if not osp.isfile(p)]
    if missing:
        parser.error(f'no such image file(s): {", ".join(missing)}')
    try:
        inferencer = StudentInferencer(
            args.model, classes=classes, device=args.device,
            batch_size=args.batch_size)
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    results = inferencer(args.images, topk=args.topk)

    width = max(len('image'), *(len(p) for p in args.images))
    names = max(len(n) for n in inferencer.class_names)
    print(f'{"image":<{width}}  {"class":<{names}}  score')
    for path, result in zip(args.images, results):
        for rank, (name, score) in enumerate(result['topk']):
            shown = path if rank == 0 else ''
            print(f'{shown:<{width}}  {name:<{names}}  {score:.4f}')
    if args.out:
        rows = [dict(image=p, topk=r['topk'])
                for p, r in zip(args.images, results)]
        atomic_write(json.dumps(rows, indent=2, ensure_ascii=False),
                     args.out)


if __name__ == '__main__':
    main()
