"""Write a folder (or a list) of images as webdataset tar shards for
UnlabeledShards, whole or not at all; see docs/unlabeled_data.md.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys
import tempfile
from typing import List, Optional

_REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from mmpromptkd.datasets import UnlabeledImages  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write images as webdataset tar shards.')
    parser.add_argument('source', help='a folder of images, or a .txt file '
                        'with one image path per line (see --data-root)')
    parser.add_argument('out_dir', help='output folder; must not exist')
    parser.add_argument('--data-root', help='root of the paths of a list '
                        '(default: the list\'s folder)')
    parser.add_argument('--images-per-shard', type=int, default=1000,
                        help='(default: 1000)')
    parser.add_argument('--skip-non-images', action='store_true',
                        help='skip files that are not images instead of '
                        'stopping')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from webdataset import TarWriter
    if args.images_per_shard < 1:
        raise SystemExit('--images-per-shard must be >= 1')
    out = osp.abspath(args.out_dir)
    if osp.exists(out):
        raise SystemExit(f'{out} exists; refusing to overwrite it (choose '
                         'another output folder)')
    if osp.isdir(args.source):
        images = UnlabeledImages(
            data_root=args.source, skip_non_images=args.skip_non_images)
    else:
        images = UnlabeledImages(
            file_list=args.source,
            data_root=args.data_root,
            skip_non_images=args.skip_non_images)
    root = images.image_root
    paths = [images.get_data_info(i)['img_path'] for i in range(len(images))]

    os.makedirs(osp.dirname(out) or '.', exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.tmp-', dir=osp.dirname(out))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's folder is private
    try:
        counts = []
        for start in range(0, len(paths), args.images_per_shard):
            name = f'shard-{len(counts):06d}.tar'
            chunk = paths[start:start + args.images_per_shard]
            with TarWriter(osp.join(tmp, name)) as writer:
                for i, path in enumerate(chunk, start):
                    # A unique key without dots (webdataset splits there).
                    stem = osp.splitext(osp.relpath(path, root))[0].replace(
                        os.sep, '__').replace('.', '_')
                    ext = osp.splitext(path)[1].lstrip('.').lower()
                    with open(path, 'rb') as f:
                        writer.write({'__key__': f'{i:09d}_{stem}',
                                      ext: f.read()})
            counts.append(len(chunk))
        last = len(counts) - 1
        index = dict(
            shards=f'shard-{{000000..{last:06d}}}.tar',
            num_images=len(paths),
            images_per_shard=counts)
        with open(osp.join(tmp, 'shards.json'), 'w') as f:
            json.dump(index, f, indent=1)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f'{len(paths)} images in {len(counts)} shard(s): '
          f'{osp.join(out, index["shards"])}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
