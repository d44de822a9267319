"""Cases of the input side: 4 (data pipeline) and 10 (unlabeled sources)
of docs/performance.md."""
import itertools
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

import numpy as np
from torch.utils.data import DataLoader

from ..common import REPO_ROOT, Bench, print_table


def write_jpegs(folder: str, num: int, seed: int) -> None:
    """Write ``num`` textured JPEGs of 400x300 into a new ``folder``."""
    from PIL import Image
    os.makedirs(folder)
    rng = np.random.default_rng(seed)
    for i in range(num):
        # Smooth colour blobs plus mild noise: JPEG-like content, unlike
        # pure noise, which decodes unrealistically slowly.
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(small).resize(
            (400, 300), Image.BICUBIC), dtype=np.float32)
        img += rng.normal(0, 8, img.shape)
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(
            osp.join(folder, f'img_{i:05d}.jpg'), quality=90)


def train_pipeline() -> List[dict]:
    """The training pipeline of the configs (DTD's, shared by all)."""
    from mmengine.config import Config
    return list(Config.fromfile(osp.join(
        REPO_ROOT, 'configs', '_base_', 'datasets',
        'dtd.py')).train_pipeline)


def _images_per_s(loader, batches: int, warmup: int) -> float:
    """Images/s of ``batches`` batches after ``warmup`` ones, epoch after."""
    it = itertools.chain.from_iterable(itertools.repeat(loader))
    for _ in range(warmup):
        # Worker start-up and first decodes are not steady state.
        next(it)
    start, images = time.perf_counter(), 0
    for batch in itertools.islice(it, batches):
        images += len(batch['inputs'])
    return images / (time.perf_counter() - start)


def bench_data(bench: Bench) -> Dict[str, Any]:
    """4. Images/s of the training pipeline versus a step's consumption."""
    from mmengine.dataset import pseudo_collate

    from mmpromptkd.datasets import UnlabeledImages

    args = bench.args
    with tempfile.TemporaryDirectory(prefix='promptkd_bench_jpegs_',
                                     ignore_cleanup_errors=True) as tmp:
        pipeline = train_pipeline()
        write_jpegs(osp.join(tmp, 'images'), args.num_images, args.seed)
        dataset = UnlabeledImages(data_root=osp.join(tmp, 'images'),
                                  pipeline=pipeline)
        loader = DataLoader(dataset, batch_size=args.batch_size,
                            shuffle=True, num_workers=args.workers,
                            collate_fn=pseudo_collate,
                            persistent_workers=args.workers > 0)
        pipe_ips = _images_per_s(loader, args.iters, args.warmup)
        shape = tuple(dataset[0]['inputs'].shape)
        del loader
    step_ips = bench.stored_step()['img_s']
    per_worker = pipe_ips / max(args.workers, 1)
    out = dict(workers=args.workers, pipeline_img_s=pipe_ips,
               pipeline_img_s_per_worker=per_worker, step_img_s=step_ips,
               ratio=pipe_ips / step_ips,
               workers_needed=int(np.ceil(step_ips / per_worker)),
               output_shape=list(shape),
               pipeline=[t['type'] for t in pipeline])
    print_table(
        '4. Data pipeline vs training step', ['what', 'img/s'],
        [[f'pipeline, {args.workers} workers', pipe_ips],
         ['training step consumes', step_ips]], [
            f'ratio pipeline/step {out["ratio"]:.2f}x; workers to keep up: '
            f'{out["workers_needed"]} ({per_worker:.1f} img/s per worker); '
            f'{args.num_images} JPEGs of 400x300 -> {shape}'])
    return out


def bench_sources(bench: Bench) -> Dict[str, Any]:
    """10. Images/s of UnlabeledShards vs UnlabeledImages vs a step."""
    from mmengine.dataset import pseudo_collate

    from mmpromptkd.datasets import UnlabeledImages, UnlabeledShards

    args = bench.args
    with tempfile.TemporaryDirectory(prefix='promptkd_bench_sources_',
                                     ignore_cleanup_errors=True) as tmp:
        folder, shards = osp.join(tmp, 'images'), osp.join(tmp, 'shards')
        write_jpegs(folder, args.num_images, args.seed)
        per_shard = max(1, args.num_images // (4 * max(args.workers, 1)))
        subprocess.run([
            sys.executable,
            osp.join(REPO_ROOT, 'tools', 'misc', 'images_to_shards.py'),
            folder, shards, '--images-per-shard', str(per_shard)
        ], check=True, stdout=subprocess.DEVNULL)
        with open(osp.join(shards, 'shards.json')) as f:
            pattern = osp.join(shards, json.load(f)['shards'])
        pipeline = train_pipeline()
        start = time.perf_counter()
        stream = UnlabeledShards(pattern, pipeline=pipeline,
                                 shuffle_buffer=256)
        count_s = time.perf_counter() - start
        images = UnlabeledImages(data_root=folder, pipeline=pipeline)
        kw = dict(batch_size=args.batch_size, num_workers=args.workers,
                  collate_fn=pseudo_collate)
        batches = max(1, args.num_images // args.batch_size - args.warmup)
        shard_ips, folder_ips = [], []
        for _ in range(2):  # alternating: both see the same machine load
            shard_ips.append(_images_per_s(
                DataLoader(stream, **kw), batches, args.warmup))
            folder_ips.append(_images_per_s(
                DataLoader(images, shuffle=True, **kw), batches, args.warmup))
    step_ips = bench.stored_step()['img_s']
    out = dict(workers=args.workers, num_images=args.num_images,
               images_per_shard=per_shard, count_images_s=count_s,
               shards_img_s=max(shard_ips), folder_img_s=max(folder_ips),
               step_img_s=step_ips)
    out['shards_vs_folder'] = out['shards_img_s'] / out['folder_img_s']
    out['shards_vs_step'] = out['shards_img_s'] / step_ips
    print_table(
        '10. Unlabeled sources vs training step', ['what', 'img/s'],
        [[f'UnlabeledShards, {args.workers} workers', out['shards_img_s']],
         [f'UnlabeledImages (folder), {args.workers} workers',
          out['folder_img_s']], ['training step consumes', step_ips]], [
            f'shards/folder {out["shards_vs_folder"]:.2f}x, shards/step '
            f'{out["shards_vs_step"]:.2f}x; shards of {per_shard}, counted '
            f'in {count_s * 1e3:.0f} ms'])
    return out
