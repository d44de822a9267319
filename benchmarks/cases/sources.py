"""Case 10: unlabeled sources (tar shards, a folder) versus a step."""
import itertools
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict

from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader

from ..common import REPO_ROOT, Bench, print_table, set_classes
from .data import train_pipeline, write_jpegs


def _endless(loader):
    """Batches of ``loader``, epoch after epoch (the stream is endless
    already; a folder is read again)."""
    while True:
        yield from loader


def _images_per_s(loader, batches: int, warmup: int) -> float:
    """Images/s over ``batches`` batches after ``warmup`` of them."""
    it = _endless(loader)
    for _ in range(warmup):
        next(it)
    start, images = time.perf_counter(), 0
    for batch in itertools.islice(it, batches):
        images += len(batch['inputs'])
    return images / (time.perf_counter() - start)


def bench_sources(bench: Bench) -> Dict[str, Any]:
    """Images/s of ``UnlabeledShards`` and ``UnlabeledImages`` over the same
    JPEGs and pipeline, and what a training step consumes."""
    from mmpromptkd.datasets import UnlabeledImages, UnlabeledShards

    args = bench.args
    tmp = tempfile.mkdtemp(prefix='promptkd_bench_sources_')
    try:
        folder = osp.join(tmp, 'images')
        os.makedirs(folder)
        write_jpegs(folder, args.num_images, args.seed)
        readers = max(args.workers, 1)
        per_shard = max(1, args.num_images // (4 * readers))
        subprocess.run([
            sys.executable,
            osp.join(REPO_ROOT, 'tools', 'misc', 'images_to_shards.py'),
            folder,
            osp.join(tmp, 'shards'), '--images-per-shard',
            str(per_shard)
        ], check=True, stdout=subprocess.DEVNULL)
        with open(osp.join(tmp, 'shards', 'shards.json')) as f:
            pattern = osp.join(tmp, 'shards', json.load(f)['shards'])
        pipeline = train_pipeline()
        start = time.perf_counter()
        shards = UnlabeledShards(pattern, pipeline=pipeline,
                                 shuffle_buffer=256)
        count_s = time.perf_counter() - start
        images = UnlabeledImages(data_root=folder, pipeline=pipeline)
        kw = dict(batch_size=args.batch_size, num_workers=args.workers,
                  collate_fn=pseudo_collate)
        # Alternating, so that both see the same machine load.
        batches = max(1, args.num_images // args.batch_size - args.warmup)
        shard_ips, folder_ips = [], []
        for _ in range(2):
            shard_ips.append(_images_per_s(
                DataLoader(shards, **kw), batches, args.warmup))
            folder_ips.append(_images_per_s(
                DataLoader(images, shuffle=True, **kw), batches, args.warmup))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    step = bench.results.get('train_step', {}).get(str(max(args.classes)))
    if step is None:
        set_classes(bench.model, bench.names)
        step = bench.time_steps(dict(stored={}))
    step_ips = step['stored']['img_s']
    out = dict(
        workers=args.workers,
        num_images=args.num_images,
        images_per_shard=per_shard,
        count_images_s=count_s,
        shards_img_s=max(shard_ips),
        folder_img_s=max(folder_ips),
        step_img_s=step_ips)
    out['shards_vs_folder'] = out['shards_img_s'] / out['folder_img_s']
    out['shards_vs_step'] = out['shards_img_s'] / step_ips
    print_table(
        '10. Unlabeled sources vs training step', ['what', 'img/s'],
        [[f'UnlabeledShards, {args.workers} workers', out['shards_img_s']],
         [f'UnlabeledImages (folder), {args.workers} workers',
          out['folder_img_s']], ['training step consumes', step_ips]], [
             f'shards/folder {out["shards_vs_folder"]:.2f}x, shards/step '
             f'{out["shards_vs_step"]:.2f}x; best of 2 alternating runs',
             f'{args.num_images} JPEGs of 400x300 in shards of {per_shard}; '
             f'counting their images at start took {count_s * 1e3:.0f} ms; '
             f'step at {bench.image_size[0]} px, stored features'
         ])
    return out
