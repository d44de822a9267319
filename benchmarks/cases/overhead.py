"""Case 2: a Runner iteration versus a bare loop over the same batches."""
import contextlib
import copy
import os.path as osp
import shutil
import tempfile
import time
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

import torch
from torch.utils.data import DataLoader, Dataset

from ..common import (Bench, FALLBACK_CUSTOM_HOOKS, RUNTIME_CONFIG, SGD_CFG,
                      make_optimizer, print_table, set_classes, summarize,
                      synchronize)


# 2. Framework overhead.
class PackedImages(Dataset):
    """In-memory uint8 CHW images packed like mmpretrain's ``PackInputs``.

    Args:
        num (int): Number of images.
        image_size (tuple[int, int]): Height and width.
        classes (Sequence[str]): ``metainfo['classes']`` (class names are
            read by the text-features hook; labels never are).
        seed (int): Seed of the pixel values.
    """

    def __init__(self, num: int, image_size: Sequence[int],
                 classes: Sequence[str], seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.images = torch.randint(
            0,
            256, (num, 3) + tuple(image_size),
            generator=gen,
            dtype=torch.uint8)
        self.metainfo = dict(classes=tuple(classes))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        from mmpretrain.structures import DataSample
        return dict(inputs=self.images[index], data_samples=DataSample())


class BareLoop:
    """The work of a training iteration without the framework.

    One call fetches a batch, runs the data preprocessor, the forward pass in
    'loss' mode, the backward pass and an SGD step.

    Args:
        model (PromptKDDistiller): The distiller.
        loader (DataLoader): Batches, cycled through.
    """

    def __init__(self, model, loader: DataLoader) -> None:
        self.model = model
        self.loader = loader
        self.optimizer = make_optimizer(model)
        self._batches = self._cycle()

    def _cycle(self) -> Iterator[dict]:
        while True:
            yield from self.loader

    def __call__(self) -> None:
        data = self.model.data_preprocessor(next(self._batches), True)
        losses = self.model(**data, mode='loss')
        loss = sum(losses.values())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def _interleaving_clock(device: torch.device, bare: Callable[[], None]):
    """A hook timing Runner iterations, with a timed bare one after each."""
    from mmengine.hooks import Hook

    class InterleavingClock(Hook):
        # Last of all hooks: the Runner interval covers its data loading,
        # every hook and the optimiser step.
        priority = 'LOWEST'

        def __init__(self) -> None:
            self.runner_times: List[float] = []
            self.bare_times: List[float] = []
            self._start: Optional[float] = None

        def before_train(self, runner) -> None:
            synchronize(device)
            self._start = time.perf_counter()

        def after_train_iter(self,
                             runner,
                             batch_idx,
                             data_batch=None,
                             outputs=None) -> None:
            synchronize(device)
            self.runner_times.append(time.perf_counter() - self._start)
            start = time.perf_counter()
            bare()
            synchronize(device)
            now = time.perf_counter()
            self.bare_times.append(now - start)
            self._start = now

    return InterleavingClock()


RUN_GUARD_HOOKS = ('EpochSeedHook', 'RandomStateHook', 'EmptyClassCheckHook')


def runtime_hooks() -> Tuple[dict, List[dict]]:
    """Default and custom hooks of the configs' runtime, for benchmarking.

    The logger interval is made large and checkpoints are off: neither is a
    per-iteration cost of a real run.

    Returns:
        tuple[dict, list[dict]]: ``default_hooks`` and ``custom_hooks``.
    """
    default_hooks: dict = {}
    custom_hooks = copy.deepcopy(FALLBACK_CUSTOM_HOOKS)
    if osp.isfile(RUNTIME_CONFIG):
        from mmengine.config import Config
        cfg = Config.fromfile(RUNTIME_CONFIG)
        default_hooks = copy.deepcopy(dict(cfg.get('default_hooks', {})))
        # The resume and empty-data guards act once per run or epoch and
        # need an epoch-based loop over a labeled dataset: not measured.
        custom_hooks = [
            copy.deepcopy(h) for h in cfg.get('custom_hooks', [])
            if h.get('type') not in RUN_GUARD_HOOKS
        ]
    default_hooks['logger'] = dict(type='LoggerHook', interval=10**6)
    default_hooks['checkpoint'] = dict(
        type='CheckpointHook', interval=-1, save_last=False)
    return default_hooks, custom_hooks


def bench_overhead(bench: Bench) -> Dict[str, Any]:
    """A Runner iteration versus a bare loop over the same batches."""
    from unittest import mock

    from mmengine.dataset import pseudo_collate
    from mmengine.device import get_device
    from mmengine.runner import Runner

    args, model, device = bench.args, bench.model, bench.device
    set_classes(model, bench.names)
    bench.reset()
    dataset = PackedImages(args.batch_size * 4, bench.image_size, bench.names,
                           args.seed)
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        collate_fn=pseudo_collate,
        num_workers=0)
    clock = _interleaving_clock(device, BareLoop(model, loader))
    default_hooks, custom_hooks = runtime_hooks()
    work_dir = tempfile.mkdtemp(prefix='promptkd_bench_runner_')
    # mmengine moves the model to its own choice of device (CUDA when
    # present); keep it on the device under test.
    patch = (
        mock.patch('mmengine.runner.runner.get_device', lambda: str(device))
        if str(device) != get_device() else contextlib.nullcontext())
    try:
        with patch:
            runner = Runner(
                model=model,
                work_dir=work_dir,
                train_dataloader=dict(
                    dataset=dataset,
                    batch_size=args.batch_size,
                    num_workers=0,
                    sampler=dict(type='DefaultSampler', shuffle=True),
                    collate_fn=dict(type='pseudo_collate')),
                train_cfg=dict(
                    type='IterBasedTrainLoop',
                    max_iters=args.warmup + args.iters),
                optim_wrapper=dict(optimizer=dict(type='SGD', **SGD_CFG)),
                default_hooks=default_hooks,
                custom_hooks=custom_hooks + [clock],
                default_scope='mmpromptkd',
                randomness=dict(seed=args.seed),
                log_level='WARNING')
            runner.train()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    bench.reset()

    bare_s = summarize(clock.bare_times[args.warmup:])
    runner_s = summarize(clock.runner_times[args.warmup:])
    overhead = runner_s['median_ms'] / bare_s['median_ms'] - 1
    hooks = sorted(h.__class__.__name__ for h in runner.hooks
                   if h is not clock)
    out = dict(
        bare=bare_s,
        runner=runner_s,
        overhead_pct=overhead * 100,
        overhead_ms=runner_s['median_ms'] - bare_s['median_ms'],
        hooks=hooks)
    batch = args.batch_size
    print_table('2. Framework overhead: mmengine Runner vs bare loop', [
        'loop', 'ms/iter', 'img/s'
    ], [['bare', bare_s['median_ms'], batch / bare_s['median_ms'] * 1e3],
        ['Runner', runner_s['median_ms'], batch / runner_s['median_ms'] * 1e3]
        ], [
            f'overhead {overhead * 100:+.1f}% '
            f'({out["overhead_ms"]:+.2f} ms/iter); {len(dataset)} in-memory '
            f'uint8 images, batch {batch}, {len(bench.names)} classes',
            'both: fetch + data preprocessor + forward + backward + SGD step, '
            'alternating; the Runner adds its loop, loss parsing, message hub '
            'and the hooks of the configs (logger interval 1e6, no '
            f'checkpoint): {", ".join(hooks)}'
        ])
    return out
