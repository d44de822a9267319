"""Case 4: the training data pipeline versus what a step consumes."""
import copy
import math
import os.path as osp
import shutil
import tempfile
import time
from typing import Any, Dict, List, Sequence

import numpy as np
from torch.utils.data import DataLoader, Dataset

from ..common import (Bench, FALLBACK_TRAIN_PIPELINE, PIPELINE_CONFIG,
                      print_table, set_classes)


# 4. Data pipeline.
def write_jpegs(folder: str,
                num: int,
                seed: int,
                size: Sequence[int] = (400, 300)) -> List[str]:
    """Write ``num`` textured JPEGs of ``size`` (width, height)."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(num):
        # Smooth colour blobs plus mild noise: JPEG-like content, unlike
        # pure noise, which decodes unrealistically slowly.
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        img = np.asarray(
            Image.fromarray(small).resize(size, Image.BICUBIC),
            dtype=np.float32)
        img += rng.normal(0, 8, img.shape)
        path = osp.join(folder, f'img_{i:05d}.jpg')
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(
            path, quality=90)
        paths.append(path)
    return paths


def train_pipeline() -> List[dict]:
    """The training pipeline of the configs (DTD's, shared by all)."""
    if osp.isfile(PIPELINE_CONFIG):
        from mmengine.config import Config
        return list(Config.fromfile(PIPELINE_CONFIG).train_pipeline)
    return copy.deepcopy(FALLBACK_TRAIN_PIPELINE)


class FilePipeline(Dataset):
    """Image files run through a transform pipeline."""

    def __init__(self, paths: Sequence[str], pipeline: Sequence[dict]):
        from mmengine.dataset import Compose

        from mmpromptkd.registry import TRANSFORMS
        self.paths = list(paths)
        self.pipeline = Compose([TRANSFORMS.build(t) for t in pipeline])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        return self.pipeline(dict(img_path=self.paths[index]))


def bench_data(bench: Bench) -> Dict[str, Any]:
    """Images/s of the training pipeline versus a step's consumption."""
    from mmengine.dataset import pseudo_collate

    args = bench.args
    tmp = tempfile.mkdtemp(prefix='promptkd_bench_jpegs_')
    try:
        paths = write_jpegs(tmp, args.num_images, args.seed)
        pipeline = train_pipeline()
        loader = DataLoader(
            FilePipeline(paths, pipeline),
            batch_size=args.batch_size,
            shuffle=True,
            num_workers=args.workers,
            collate_fn=pseudo_collate,
            persistent_workers=args.workers > 0)
        done, images, start = 0, 0, None
        while done < args.warmup + args.iters:
            for batch in loader:
                done += 1
                if done == args.warmup:
                    # Worker start-up and first decodes are not steady state.
                    start = time.perf_counter()
                elif done > args.warmup:
                    images += len(batch['inputs'])
                if done == args.warmup + args.iters:
                    break
        if start is None:  # warmup == 0
            raise ValueError('--warmup must be >= 1 for the data section')
        elapsed = time.perf_counter() - start
        shape = tuple(batch['inputs'][0].shape)
        del loader
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    pipe_ips = images / elapsed
    step = bench.results.get('train_step', {}).get(str(max(args.classes)))
    if step is None:
        set_classes(bench.model, bench.names)
        step = bench.time_steps(dict(stored={}))
    step_ips = step['stored']['img_s']
    per_worker = pipe_ips / max(args.workers, 1)
    out = dict(
        workers=args.workers,
        pipeline_img_s=pipe_ips,
        pipeline_img_s_per_worker=per_worker,
        step_img_s=step_ips,
        ratio=pipe_ips / step_ips,
        workers_needed=math.ceil(step_ips / per_worker),
        output_shape=list(shape),
        pipeline=[t['type'] for t in pipeline])
    print_table(
        '4. Data pipeline vs training step', ['what', 'img/s'],
        [[f'pipeline, {args.workers} workers', pipe_ips],
         ['training step consumes', step_ips]], [
             f'ratio pipeline/step {out["ratio"]:.2f}x; workers to keep up: '
             f'{out["workers_needed"]} ({per_worker:.1f} img/s per worker)',
             f'pipeline {" > ".join(out["pipeline"])} over {args.num_images} '
             f'JPEGs of 400x300 -> {shape}; step at '
             f'{bench.image_size[0]} px, stored features, '
             f'{len(bench.names)} classes'
         ])
    return out
