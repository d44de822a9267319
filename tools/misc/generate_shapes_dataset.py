"""Write the synthetic-shapes dataset (CoOp format), or an unlabeled folder
of the same domain, to a directory; see docs/synthetic_shapes.md.
"""
import argparse
import os.path as osp
import sys
import time
from typing import List, Optional

# From a source checkout without installing the package.
_REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
for _path in (_REPO_ROOT, osp.dirname(osp.abspath(__file__))):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import synthetic_shapes  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate the deterministic synthetic-shapes dataset '
        '(images/ + split_shapes.json + classnames.txt, CoOp format).')
    add = parser.add_argument
    add('out_dir', help='output directory; must be missing, empty, or '
        'written earlier by this tool with the same arguments')
    add('--num-classes', type=int, default=40,
        help=f'number of classes, {synthetic_shapes.MIN_CLASSES}..'
        f'{synthetic_shapes.MAX_CLASSES} (default: 40)')
    add('--train-per-class', type=int, default=64, help='(default: 64)')
    add('--val-per-class', type=int, default=10, help='(default: 10)')
    add('--test-per-class', type=int, default=50, help='(default: 50)')
    add('--image-size', type=int, default=32, help='(default: 32)')
    add('--seed', type=int, default=0,
        help='image seed; the class list does not depend on it (default: 0)')
    add('--domain', choices=synthetic_shapes.DOMAINS, default='target',
        help="'pretrain' writes the shifted pre-training domain instead "
        '(default: target)')
    add('--unlabeled-per-class', type=int,
        help='write an unlabeled folder instead (images/<n>.png and '
        'classes.txt) with this many train-stream images per class; the '
        '--*-per-class options are then ignored')
    add('--first-index', type=int, default=0,
        help='with --unlabeled-per-class: index of the first image of each '
        'class in the train stream; the train_per_class of a CoOp dataset '
        'gives images beyond its train split (default: 0)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    common = dict(num_classes=args.num_classes, image_size=args.image_size,
                  seed=args.seed, domain=args.domain)
    try:
        if args.unlabeled_per_class is not None:
            summary = synthetic_shapes.generate_unlabeled_images(
                args.out_dir, per_class=args.unlabeled_per_class,
                first_index=args.first_index, **common)
        else:
            summary = synthetic_shapes.generate_coop_dataset(
                args.out_dir, train_per_class=args.train_per_class,
                val_per_class=args.val_per_class,
                test_per_class=args.test_per_class, **common)
    except (ValueError, TypeError, FileExistsError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    names = summary['class_names']
    out = summary['out_dir']
    if args.unlabeled_per_class is not None:
        print(f'wrote {summary["num_images"]} unlabeled images of '
              f'{len(names)} classes to {out} in {elapsed:.1f} s')
        print(f'  {osp.join(out, synthetic_shapes.IMAGE_DIR)}/<n>.png')
        print(f'  {osp.join(out, synthetic_shapes.UNLABELED_CLASSES_FILE)}')
        return 0

    n_base = summary['num_base']
    counts = summary['counts']
    print(f'wrote {sum(counts.values())} images of {len(names)} classes '
          f'({n_base} base, {len(names) - n_base} novel) to {out} '
          f'in {elapsed:.1f} s')
    print('  ' + ', '.join(f'{split}: {n}' for split, n in counts.items()))
    print(f'  {osp.join(out, synthetic_shapes.IMAGE_DIR)}/<class>/'
          '<split>_<index>.png')
    for name in (synthetic_shapes.SPLIT_FILE,
                 synthetic_shapes.CLASSNAMES_FILE,
                 synthetic_shapes.MARKER_FILE):
        print(f'  {osp.join(out, name)}')
    print('  base: ' + ', '.join(names[:n_base]))
    print('  novel: ' + ', '.join(names[n_base:]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
