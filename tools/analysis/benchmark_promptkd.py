"""Measure the speed, memory and scaling of PromptKD training and inference.

Every figure is measured in one run, side by side with the figure it is
compared with, and printed as a small table with the ratio:

1. ``train_step``: a distillation step (forward, backward, SGD step; the
   teacher frozen) with the stored teacher text features versus recomputing
   the teacher's text features of all classes on every step, as the
   reference implementation does.
2. ``overhead``: a full mmengine ``Runner`` iteration (``IterBasedTrainLoop``,
   the hooks of the configs' runtime, the distiller's data preprocessor)
   versus a bare loop over the same batches.
3. ``inference``: images/s of the exported student (student, projector and
   stored text features) versus the teacher's image encoder with the same
   stored features.
4. ``data``: images/s of the real training pipeline of the configs over
   JPEGs written to a temporary folder versus the images/s a step consumes.
5. ``memory``: memory of a step with and without gradient checkpointing.
6. ``precision``: bf16 (and, on CUDA, fp16) autocast, optionally with a
   half-precision teacher: step time and agreement of the logits with fp32.
7. ``roofline``: FLOPs per image and the implied images/s bound for a peak
   throughput.
8. ``ideas``: candidate speed-ups measured against the current code.

Timings are medians over ``--iters`` iterations after ``--warmup``
iterations; CUDA is synchronised around every timed call. Models have random
weights: nothing is downloaded.

Example::

    python tools/analysis/benchmark_promptkd.py --out work_dirs/bench.json
    python tools/analysis/benchmark_promptkd.py --arch real --device cuda \\
        --batch-size 32 --sections train_step precision roofline
"""
import argparse
import contextlib
import copy
import json
import math
import os
import os.path as osp
import platform
import shutil
import statistics
import sys
import tempfile
import time
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

# Run from a source checkout without installing the package.
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

SECTIONS = ('train_step', 'overhead', 'inference', 'data', 'memory',
            'precision', 'roofline', 'ideas')
ARCHS = ('tiny', 'base', 'real')
# NVIDIA H200 (SXM) dense bf16 tensor-core peak, without sparsity.
DEFAULT_PEAK_TFLOPS = 989.0
# Reference optimiser of stage (b).
SGD_CFG = dict(lr=0.005, momentum=0.9, weight_decay=5e-4)
# Training pipeline of the configs, used when the config file is missing.
FALLBACK_TRAIN_PIPELINE = [
    dict(type='LoadImageFromFileSafe'),
    dict(type='RandomResizedCrop', scale=224, interpolation='bicubic',
         backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
PIPELINE_CONFIG = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets',
                           'dtd.py')
# Hooks of every config; used when the file is missing.
RUNTIME_CONFIG = osp.join(REPO_ROOT, 'configs', '_base_',
                          'default_runtime.py')
FALLBACK_CUSTOM_HOOKS = [dict(type='PromptKDTextFeaturesHook')]


# --------------------------------------------------------------------------- #
# Architectures.
def _clip_cfg(embed_dim: int, image_size: int, patch_size: int, width: int,
              layers: int, text_width: int, text_layers: int) -> dict:
    """An open_clip model config dict with heads of width 32 or 64."""
    head = 64 if width % 64 == 0 and width >= 256 else 32
    text_head = 64 if text_width % 64 == 0 and text_width >= 256 else 32
    return dict(
        embed_dim=embed_dim,
        vision_cfg=dict(
            image_size=image_size, patch_size=patch_size, width=width,
            layers=layers, head_width=head),
        text_cfg=dict(
            context_length=77, vocab_size=49408, width=text_width,
            heads=text_width // text_head, layers=text_layers))


def arch_clips(arch: str) -> Dict[str, Any]:
    """Student and teacher CLIP configs and prompt depths of an arch.

    Args:
        arch (str): 'tiny' (small random CLIPs at 64 px), 'base' (a
            ViT-B/16 teacher and a ViT-S/16 student at 112 px) or 'real'
            (ViT-L/14 teacher, ViT-B/16 student, 224 px, as in the paper).

    Returns:
        dict: ``student``, ``teacher`` (open_clip config dicts), ``depth``
        (vision and text prompt depth) and ``length`` (prompt tokens).
    """
    import open_clip
    if arch == 'tiny':
        return dict(
            student=_clip_cfg(64, 64, 8, 64, 4, 64, 1),
            # Text tower sized so that encoding one class costs about a
            # tenth of a training step per image, as with the real pair.
            teacher=_clip_cfg(96, 64, 8, 128, 6, 64, 3),
            depth=3, length=4)
    vit_b16 = copy.deepcopy(open_clip.get_model_config('ViT-B-16'))
    if arch == 'base':
        # ViT-B/16 teacher widths and a ViT-S/16 student at 112 px (7 x 7
        # patches), a quarter of the 224 px image cost, so that a CPU step
        # takes seconds. The student's text tower is dropped after
        # building: keep it small.
        teacher = copy.deepcopy(vit_b16)
        teacher['vision_cfg']['image_size'] = 112
        return dict(
            student=_clip_cfg(384, 112, 16, 384, 12, 64, 1),
            teacher=teacher, depth=9, length=4)
    if arch == 'real':
        # The image tower is exactly ViT-B/16; the text tower, dropped after
        # building, is kept small.
        student = copy.deepcopy(vit_b16)
        student['text_cfg'] = _clip_cfg(512, 224, 16, 768, 1, 64, 1)[
            'text_cfg']
        return dict(
            student=student,
            teacher=copy.deepcopy(open_clip.get_model_config('ViT-L-14')),
            depth=9, length=4)
    raise ValueError(f'unknown arch {arch!r}; expected one of {ARCHS}')


def distiller_cfg(arch: str,
                  teacher_precision: str = 'fp32',
                  student_grad_checkpointing: bool = False) -> dict:
    """Config of a :class:`PromptKDDistiller` with random CLIP weights.

    Args:
        arch (str): See :func:`arch_clips`.
        teacher_precision (str): ``precision`` of the teacher's CLIP
            weights. Defaults to 'fp32'.
        student_grad_checkpointing (bool): ``grad_checkpointing`` of the
            student. Defaults to False.

    Returns:
        dict: The model config.
    """
    spec = arch_clips(arch)
    return dict(
        type='PromptKDDistiller',
        student=dict(
            type='PromptedCLIP',
            clip=dict(model_cfg=spec['student'], quick_gelu=True),
            vision_prompt_depth=spec['depth'],
            vision_prompt_length=spec['length'],
            grad_checkpointing=student_grad_checkpointing),
        teacher=dict(
            type='PromptedCLIP',
            clip=dict(model_cfg=spec['teacher'], quick_gelu=True,
                      precision=teacher_precision),
            vision_prompt_depth=spec['depth'],
            vision_prompt_length=spec['length'],
            text_prompt_depth=spec['depth'],
            text_prompt_length=spec['length']),
        projector=dict(type='FeatureProjector'),
        distill_loss=dict(type='KLLogitLoss', tau=1.0, loss_weight=1000.0))


def class_names(num: int, kind: str = 'imagenet') -> List[str]:
    """``num`` distinct class names.

    Only their token lengths matter to the cost (the text tower runs over
    the full context, or to the longest end token, see section 8).

    Args:
        num (int): Number of names.
        kind (str): 'imagenet' (ImageNet's names, shipped with open_clip,
            numbered again beyond 1000) or 'synthetic' ("synthetic object
            {i}"). Defaults to 'imagenet'.

    Returns:
        list[str]: The names.
    """
    if kind == 'synthetic':
        return [f'synthetic object {i}' for i in range(num)]
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES
    base = list(IMAGENET_CLASSNAMES)
    return [
        base[i % len(base)] + (f' {i // len(base)}' if i >= len(base) else '')
        for i in range(num)
    ]


# --------------------------------------------------------------------------- #
# Timing and printing.
def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work so that wall-clock times are real."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def summarize(times: Sequence[float]) -> Dict[str, float]:
    """Median, min and max (ms) of per-iteration times in seconds."""
    return dict(
        median_ms=statistics.median(times) * 1e3,
        min_ms=min(times) * 1e3,
        max_ms=max(times) * 1e3,
        n=len(times))


def time_interleaved(fns: Dict[str, Callable[[], Any]], iters: int,
                     warmup: int,
                     device: torch.device) -> Dict[str, Dict[str, float]]:
    """Time several functions with their iterations interleaved.

    Round ``i`` runs every function once, starting with a different one each
    round, so that drift in the machine's load (other processes, clocks)
    affects all of them alike.

    Args:
        fns (dict[str, Callable]): Functions by name.
        iters (int): Timed rounds.
        warmup (int): Untimed calls of each function first.
        device (torch.device): Synchronised around each call.

    Returns:
        dict[str, dict]: :func:`summarize` of each function.
    """
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    times: Dict[str, List[float]] = {name: [] for name in names}
    for i in range(iters):
        for j in range(len(names)):
            name = names[(i + j) % len(names)]
            synchronize(device)
            start = time.perf_counter()
            fns[name]()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: summarize(t) for name, t in times.items()}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 1e5:
            return f'{value:.3g}' if abs(value) < 10 else f'{value:,.1f}'
        return f'{value:.3g}'
    return str(value)


def print_table(title: str, header: Sequence[str],
                rows: Sequence[Sequence[Any]],
                notes: Sequence[str] = ()) -> None:
    """Print an aligned plain-text table with a title and notes."""
    cells = [list(header)] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f'\n== {title}')
    for i, row in enumerate(cells):
        print('  ' + ' | '.join(c.rjust(w) for c, w in zip(row, widths)))
        if i == 0:
            print('  ' + '-+-'.join('-' * w for w in widths))
    for note in notes:
        print(f'  * {note}')


# --------------------------------------------------------------------------- #
# Model helpers.
def build_distiller(cfg: dict, device: torch.device, seed: int):
    """Build a distiller from ``cfg`` with seeded random weights."""
    from mmpromptkd.registry import MODELS
    torch.manual_seed(seed)
    return MODELS.build(copy.deepcopy(cfg)).to(device).train()


def set_classes(model, names: Sequence[str], force: bool = False) -> float:
    """Store the teacher text features of ``names`` (the one-off cost).

    Args:
        model (PromptKDDistiller): The distiller.
        names (Sequence[str]): Class names.
        force (bool): Recompute even if these classes are stored.
            Defaults to False.

    Returns:
        float: Seconds spent computing the features; 0 when they were
        already stored.
    """
    if not force and tuple(names) == tuple(model.class_names) and \
            len(model.text_features):
        return 0.0
    # Training refuses to replace stored features of other classes: drop
    # them first, as a fresh run would start without any.
    model.text_features = model.text_features.new_zeros(
        (0, model.text_features.shape[1]))
    model.class_names = ()
    device = model.text_features.device
    synchronize(device)
    start = time.perf_counter()
    model.prepare_text_features(names, for_training=True)
    synchronize(device)
    return time.perf_counter() - start


def make_optimizer(model) -> torch.optim.Optimizer:
    """SGD of the reference over the trainable parameters only."""
    return torch.optim.SGD(
        list(model.trainable_parameters().values()), **SGD_CFG)


def loss_with_text(model, inputs: torch.Tensor,
                   text: torch.Tensor) -> torch.Tensor:
    """The distillation loss of ``model(inputs, mode='loss')`` computed
    against the given normalised text features (C, D)."""
    teacher = model.teacher_logits(inputs, text)
    student = model.student.logit_scale.float() * \
        model.student_features(inputs) @ text.t()
    return model.distill_loss(student, teacher)


def reference_loss(model, inputs: torch.Tensor,
                   names: Sequence[str]) -> torch.Tensor:
    """Loss with the teacher's text features recomputed for all classes.

    This is what the reference implementation does on every step.
    """
    with torch.no_grad():
        text = model.teacher.encode_text(names, normalize=True).float()
    return loss_with_text(model, inputs, text)


def make_step(model,
              optimizer: torch.optim.Optimizer,
              inputs: torch.Tensor,
              recompute_names: Optional[Sequence[str]] = None,
              amp_dtype: Optional[torch.dtype] = None,
              scaler: Optional['torch.amp.GradScaler'] = None
              ) -> Callable[[], torch.Tensor]:
    """A closure running one training step on a fixed batch.

    Args:
        model (PromptKDDistiller): The distiller, in train mode.
        optimizer (Optimizer): Optimiser of its trainable parameters.
        inputs (Tensor): Normalised images on the model's device.
        recompute_names (Sequence[str], optional): Recompute the teacher's
            text features of these classes in the step (the reference)
            instead of using the stored ones. Defaults to None.
        amp_dtype (torch.dtype, optional): Autocast dtype; None runs in
            fp32. Defaults to None.
        scaler (GradScaler, optional): Loss scaler (fp16). Defaults to None.

    Returns:
        Callable[[], Tensor]: Runs the step and returns the detached loss.
    """
    device_type = inputs.device.type

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        autocast = (torch.autocast(device_type, dtype=amp_dtype)
                    if amp_dtype is not None else contextlib.nullcontext())
        with autocast:
            if recompute_names is None:
                loss = model(inputs, mode='loss')['loss_kd']
            else:
                loss = reference_loss(model, inputs, recompute_names)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        step.last_loss = loss.detach()
        return step.last_loss

    step.last_loss = None
    return step


class Bench:
    """State shared by the sections: options, model and measured figures.

    Args:
        args (argparse.Namespace): Parsed options.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = torch.device(args.device)
        self.cfg = distiller_cfg(args.arch)
        self.model = build_distiller(self.cfg, self.device, args.seed)
        # Sections train the same model; each starts again from these
        # weights (the CLIP weights are frozen, so only these change).
        state = self.model.state_dict()
        keys = set(self.model.trainable_parameters()) | {
            k for k in state if k.startswith('projector.')}
        self._pristine = {k: state[k].detach().clone() for k in keys}
        self.names = class_names(max(args.classes), args.class_names)
        self.image_size = tuple(self.model.student.image_size)
        self.results: Dict[str, Any] = {}

    def reset(self) -> None:
        """Restore the prompts and projector (weights and BN statistics)."""
        self.model.load_state_dict(self._pristine, strict=False)
        self.model.train()

    def batch(self, batch_size: Optional[int] = None,
              seed_offset: int = 0) -> torch.Tensor:
        """A fixed batch of normalised random images on the device."""
        gen = torch.Generator().manual_seed(self.args.seed + seed_offset)
        shape = (batch_size or self.args.batch_size, 3) + self.image_size
        return torch.randn(shape, generator=gen).to(self.device)

    def time_steps(self, variants: Dict[str, dict],
                   inputs: Optional[torch.Tensor] = None
                   ) -> Dict[str, Dict[str, float]]:
        """Time training-step variants, interleaved, from reset weights.

        Args:
            variants (dict[str, dict]): Keyword arguments of
                :func:`make_step` by variant name; ``model`` (default: the
                shared model), ``inputs`` (default: ``inputs``) and
                ``around`` (a context manager factory entered around each
                step) are also accepted.
            inputs (Tensor, optional): The batch. Defaults to
                :meth:`batch`.

        Returns:
            dict[str, dict]: Per variant, :func:`summarize` plus ``img_s``
            and the last ``loss``.
        """
        self.reset()
        inputs = self.batch() if inputs is None else inputs
        fns, steps = {}, {}
        for name, kwargs in variants.items():
            kwargs = dict(kwargs)
            model = kwargs.pop('model', self.model)
            around = kwargs.pop('around', contextlib.nullcontext)
            batch = kwargs.pop('inputs', inputs)
            step = make_step(model, make_optimizer(model), batch, **kwargs)

            def run(step=step, around=around) -> None:
                with around():
                    step()

            fns[name], steps[name] = run, step
        stats = time_interleaved(fns, self.args.iters, self.args.warmup,
                                 self.device)
        for name, fig in stats.items():
            fig['img_s'] = len(inputs) / fig['median_ms'] * 1e3
            fig['loss'] = float(steps[name].last_loss)
        return stats


# --------------------------------------------------------------------------- #
# 1. Stored versus recomputed text features.
def bench_train_step(bench: Bench) -> Dict[str, Any]:
    """Step time with stored versus per-step recomputed text features."""
    model, out, rows = bench.model, {}, []
    for num in bench.args.classes:
        names = class_names(num, bench.args.class_names)
        store_s = set_classes(model, names)
        timed = bench.time_steps(
            dict(stored={}, recompute=dict(recompute_names=names)))
        stored, recompute = timed['stored'], timed['recompute']
        saving = recompute['median_ms'] - stored['median_ms']
        fig = dict(
            stored=stored,
            recompute=recompute,
            speedup=recompute['median_ms'] / stored['median_ms'],
            store_once_ms=store_s * 1e3,
            break_even_steps=(store_s * 1e3 / saving
                              if saving > 0 else None))
        out[str(num)] = fig
        rows.append([
            num, stored['median_ms'], recompute['median_ms'],
            f'{fig["speedup"]:.2f}x', stored['img_s'], recompute['img_s'],
            fig['store_once_ms'], fig['break_even_steps'] or '-'
        ])
    print_table(
        '1. Training step: stored vs recomputed teacher text features',
        ['classes', 'stored ms', 'recompute ms', 'ratio', 'stored img/s',
         'recompute img/s', 'store once ms', 'break-even steps'], rows,
        [f'batch {bench.args.batch_size}; forward + backward + SGD step, '
         'teacher frozen; ratio = recompute / stored',
         'store once: computing the stored features (tokenising included), '
         'paid once per run; break-even: steps after which storing has '
         'paid for itself'])
    return out


# --------------------------------------------------------------------------- #
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
            0, 256, (num, 3) + tuple(image_size), generator=gen,
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
    """A hook timing Runner iterations, with a bare iteration between them.

    After each Runner iteration the hook runs and times one bare iteration,
    then restarts the clock, so that the two alternate on the same model and
    see the same machine load.
    """
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

        def after_train_iter(self, runner, batch_idx, data_batch=None,
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
    dataset = PackedImages(args.batch_size * 4, bench.image_size,
                           bench.names, args.seed)
    loader = DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True,
        collate_fn=pseudo_collate, num_workers=0)
    clock = _interleaving_clock(device, BareLoop(model, loader))
    default_hooks, custom_hooks = runtime_hooks()
    work_dir = tempfile.mkdtemp(prefix='promptkd_bench_runner_')
    # mmengine moves the model to its own choice of device (CUDA when
    # present); keep it on the device under test.
    patch = (mock.patch('mmengine.runner.runner.get_device',
                        lambda: str(device))
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
                train_cfg=dict(type='IterBasedTrainLoop',
                               max_iters=args.warmup + args.iters),
                optim_wrapper=dict(
                    optimizer=dict(type='SGD', **SGD_CFG)),
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
    print_table(
        '2. Framework overhead: mmengine Runner vs bare loop',
        ['loop', 'ms/iter', 'img/s'],
        [['bare', bare_s['median_ms'], batch / bare_s['median_ms'] * 1e3],
         ['Runner', runner_s['median_ms'],
          batch / runner_s['median_ms'] * 1e3]],
        [f'overhead {overhead * 100:+.1f}% '
         f'({out["overhead_ms"]:+.2f} ms/iter); {len(dataset)} in-memory '
         f'uint8 images, batch {batch}, {len(bench.names)} classes',
         'both: fetch + data preprocessor + forward + backward + SGD step, '
         'alternating; the Runner adds its loop, loss parsing, message hub '
         'and the hooks of the configs (logger interval 1e6, no '
         f'checkpoint): {", ".join(hooks)}'])
    return out


# --------------------------------------------------------------------------- #
# 3. Inference.
def bench_inference(bench: Bench) -> Dict[str, Any]:
    """Exported student versus teacher image encoder, same stored classes."""
    from mmpromptkd.apis import export_student, load_exported_student

    args, model, device = bench.args, bench.model, bench.device
    set_classes(model, bench.names)
    bench.reset()
    batch_size = args.infer_batch_size or args.batch_size
    inputs = bench.batch(batch_size, seed_offset=1)
    tmp = tempfile.mkdtemp(prefix='promptkd_bench_export_')
    try:
        path = osp.join(tmp, 'student.pth')
        export_student(model, bench.cfg, path)
        exported = load_exported_student(path, device=str(device))
        file_mb = osp.getsize(path) / 2**20
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    model.eval()
    with torch.inference_mode():
        check = (exported(inputs, mode='tensor') -
                 model.student_logits(inputs)).abs().max().item()

        def student() -> torch.Tensor:
            return exported(inputs, mode='tensor')

        def teacher() -> torch.Tensor:
            return model.teacher_logits(inputs, model.text_features)

        timed = time_interleaved(dict(student=student, teacher=teacher),
                                 args.iters, args.warmup, device)
        s_stats, t_stats = timed['student'], timed['teacher']
    model.train()
    del exported
    for stats in (s_stats, t_stats):
        stats['img_s'] = batch_size / stats['median_ms'] * 1e3
    out = dict(
        batch_size=batch_size,
        student=s_stats,
        teacher=t_stats,
        speedup=s_stats['img_s'] / t_stats['img_s'],
        exported_file_mb=file_mb,
        max_abs_diff_vs_distiller=check)
    print_table(
        '3. Inference: exported student vs teacher',
        ['model', 'ms/batch', 'img/s'],
        [['exported student', s_stats['median_ms'], s_stats['img_s']],
         ['teacher', t_stats['median_ms'], t_stats['img_s']]],
        [f'ratio student/teacher {out["speedup"]:.2f}x; batch {batch_size}, '
         f'{len(bench.names)} classes, inference_mode',
         f'exported file {file_mb:.1f} MiB; max |logit diff| vs the '
         f'distiller {check:.2e}'])
    return out


# --------------------------------------------------------------------------- #
# 4. Data pipeline.
def write_jpegs(folder: str, num: int, seed: int,
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
        '4. Data pipeline vs training step',
        ['what', 'img/s'],
        [[f'pipeline, {args.workers} workers', pipe_ips],
         ['training step consumes', step_ips]],
        [f'ratio pipeline/step {out["ratio"]:.2f}x; workers to keep up: '
         f'{out["workers_needed"]} ({per_worker:.1f} img/s per worker)',
         f'pipeline {" > ".join(out["pipeline"])} over {args.num_images} '
         f'JPEGs of 400x300 -> {shape}; step at '
         f'{bench.image_size[0]} px, stored features, '
         f'{len(bench.names)} classes'])
    return out


# --------------------------------------------------------------------------- #
# 5. Memory.
@contextlib.contextmanager
def saved_tensor_meter(exclude: Sequence[torch.Tensor]) -> Iterator[dict]:
    """Count bytes of distinct storages saved for backward.

    Storages of ``exclude`` (the parameters and buffers, which exist anyway)
    are not counted.

    Yields:
        dict: ``bytes`` and ``tensors``, filled in while the context runs.
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    storages: Dict[int, int] = {}
    meter = dict(bytes=0, tensors=0)

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in skip and ptr not in storages:
            storages[ptr] = storage.nbytes()
            meter['bytes'] += storage.nbytes()
            meter['tensors'] += 1
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield meter


def bench_memory(bench: Bench) -> Dict[str, Any]:
    """Activation memory of a step with and without checkpointing."""
    args, model, device = bench.args, bench.model, bench.device
    set_classes(model, bench.names)
    inputs = bench.batch()
    owned = list(model.parameters()) + list(model.buffers()) + \
        list(model.teacher.parameters()) + list(model.teacher.buffers())

    @contextlib.contextmanager
    def checkpointing(flag: bool) -> Iterator[None]:
        # The flag is read at every forward: setting it equals building the
        # student with grad_checkpointing=True.
        model.student.grad_checkpointing = flag
        try:
            yield
        finally:
            model.student.grad_checkpointing = False

    out: Dict[str, Any] = {}
    for flag in (False, True):
        bench.reset()
        step = make_step(model, make_optimizer(model), inputs)
        fig: Dict[str, Any] = {}
        with checkpointing(flag):
            step()  # the optimiser state exists before measuring
            if device.type == 'cuda':
                synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
                step()
                synchronize(device)
                fig['cuda_peak_bytes'] = torch.cuda.max_memory_allocated(
                    device)
                fig['cuda_step_peak_bytes'] = fig['cuda_peak_bytes'] - base
            with saved_tensor_meter(owned) as meter:
                step()
        fig['saved_bytes'] = meter['bytes']
        fig['saved_tensors'] = meter['tensors']
        out['checkpointing' if flag else 'plain'] = fig
    timed = bench.time_steps(
        dict(plain=dict(around=lambda: checkpointing(False)),
             checkpointing=dict(around=lambda: checkpointing(True))),
        inputs)
    rows = []
    for name in ('plain', 'checkpointing'):
        fig = out[name]
        fig['step'] = timed[name]
        row = ['on' if name == 'checkpointing' else 'off',
               fig['saved_bytes'] / 2**20]
        if device.type == 'cuda':
            row.append(fig['cuda_step_peak_bytes'] / 2**20)
        rows.append(row + [fig['step']['median_ms']])
    plain, ckpt = out['plain'], out['checkpointing']
    out['saved_ratio'] = plain['saved_bytes'] / max(ckpt['saved_bytes'], 1)
    out['time_ratio'] = (ckpt['step']['median_ms'] /
                         plain['step']['median_ms'])
    notes = [
        'saved MiB: bytes of distinct tensors saved for backward '
        '(saved_tensors_hooks; parameters and buffers excluded), a proxy for '
        'activation memory',
        f'saved ratio off/on {out["saved_ratio"]:.2f}x; step time on/off '
        f'{out["time_ratio"]:.2f}x; batch {args.batch_size}'
    ]
    header = ['student grad checkpointing', 'saved MiB']
    if device.type == 'cuda':
        out['measure'] = ('torch.cuda.max_memory_allocated, and '
                          'saved_tensors_hooks bytes')
        out['cuda_ratio'] = (plain['cuda_step_peak_bytes'] /
                             max(ckpt['cuda_step_peak_bytes'], 1))
        header.append('CUDA step peak MiB')
        notes.append('CUDA step peak: max_memory_allocated during one step '
                     'minus the memory allocated before it')
    else:
        out['measure'] = 'saved_tensors_hooks bytes (CPU proxy)'
    print_table(f'5. Memory of a training step ({out["measure"]})',
                header + ['step ms'], rows, notes)
    return out


# --------------------------------------------------------------------------- #
# 6. Precision.
def _autocast(device: torch.device, dtype: Optional[torch.dtype]):
    return (torch.autocast(device.type, dtype=dtype)
            if dtype is not None else contextlib.nullcontext())


def _logits(model, inputs: torch.Tensor,
            amp_dtype: Optional[torch.dtype]) -> Dict[str, torch.Tensor]:
    """Student and teacher training logits of one batch, in fp32."""
    with torch.no_grad(), _autocast(inputs.device, amp_dtype):
        return dict(
            student=model.student_logits(inputs, for_training=True).float(),
            teacher=model.teacher_logits(inputs,
                                         model.text_features).float())


def bench_precision(bench: Bench) -> Dict[str, Any]:
    """Mixed precision: step time and agreement with fp32."""
    from mmpromptkd.registry import MODELS

    args, model, device = bench.args, bench.model, bench.device
    set_classes(model, bench.names)
    bench.reset()
    inputs = bench.batch(seed_offset=2)
    variants = [('fp32', None, 'fp32'),
                ('bf16 autocast', torch.bfloat16, 'fp32'),
                ('bf16 autocast, bf16 teacher', torch.bfloat16, 'bf16')]
    if device.type == 'cuda':
        variants += [('fp16 autocast + GradScaler', torch.float16, 'fp32'),
                     ('fp16 autocast + GradScaler, fp16 teacher',
                      torch.float16, 'fp16')]
    # Agreement first, while every variant has the same (reset) weights.
    out: Dict[str, Any] = {}
    steps: Dict[str, dict] = {}
    reference = None
    for name, dtype, teacher_precision in variants:
        variant = model
        if teacher_precision != 'fp32':
            # The fp32 model's weights; the half teacher stores its own text
            # features, as a run with this config would.
            cfg = distiller_cfg(args.arch,
                                teacher_precision=teacher_precision)
            variant = MODELS.build(cfg).to(device).train()
            variant.load_state_dict(model.state_dict(), strict=True)
            variant.teacher.load_state_dict(model.teacher.state_dict())
            set_classes(variant, bench.names, force=True)
        logits = _logits(variant, inputs, dtype)
        logits['loss'] = variant.distill_loss(logits['student'],
                                              logits['teacher'])
        reference = reference or logits
        out[name] = dict(
            max_abs_diff_student_logits=(
                logits['student'] - reference['student']).abs().max().item(),
            max_abs_diff_teacher_logits=(
                logits['teacher'] - reference['teacher']).abs().max().item(),
            loss_rel_diff=((logits['loss'] - reference['loss']).abs() /
                           reference['loss'].abs().clamp_min(1e-12)).item())
        steps[name] = dict(amp_dtype=dtype)
        if variant is not model:
            steps[name]['model'] = variant
        if dtype == torch.float16:
            steps[name]['scaler'] = torch.amp.GradScaler(device.type)
    timed = bench.time_steps(steps, inputs)
    del steps
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    rows = []
    base_ms = timed['fp32']['median_ms']
    for name, fig in out.items():
        fig['step'] = timed[name]
        fig['speedup_vs_fp32'] = base_ms / timed[name]['median_ms']
        rows.append([
            name, timed[name]['median_ms'], f'{fig["speedup_vs_fp32"]:.2f}x',
            fig['max_abs_diff_student_logits'],
            fig['max_abs_diff_teacher_logits'], fig['loss_rel_diff']
        ])
    print_table(
        '6. Precision: step time and agreement with fp32',
        ['variant', 'step ms', 'speed vs fp32', 'max|dS|', 'max|dT|',
         'loss rel diff'], rows,
        ['prompts and projector stay fp32 (master weights); dS / dT: '
         'student / teacher logits vs fp32 on the same batch and weights',
         f'logit scale {float(model.student.logit_scale):.1f}; batch '
         f'{args.batch_size}, {len(bench.names)} classes'])
    return out


# --------------------------------------------------------------------------- #
# 7. Roofline.
@contextlib.contextmanager
def _mha_slow_path() -> Iterator[None]:
    """Route attention through the counted ops (linear, SDPA).

    The fused inference path of ``nn.MultiheadAttention`` has no FLOP
    formula and would be missed by the counter.
    """
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


def count_flops(arch: str, classes: Sequence[int],
                names_kind: str = 'imagenet') -> Dict[str, Any]:
    """FLOPs per image (and per class) of one arch, on the meta device.

    The step is counted through the same calls as
    ``model(inputs, mode='loss')`` but with explicit text features, so that
    no stored state has to live on the meta device. Falls back to the CPU if
    a meta build fails. Batch 2 is the smallest the projector's BatchNorm
    accepts in training.

    Args:
        arch (str): Architecture.
        classes (Sequence[int]): Class counts (the logits depend on them).
        names_kind (str): Class names, see :func:`class_names`; they set
            the length of the text run to the end token. Defaults to
            'imagenet'.

    Returns:
        dict: FLOPs of the teacher forward, student forward + backward,
        student inference and text encoding per class, and of the step per
        class count.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from mmpromptkd.registry import MODELS
    cfg = distiller_cfg(arch)
    batch = 2
    try:
        with torch.device('meta'):
            model = MODELS.build(cfg)
        device = torch.device('meta')
    except Exception:  # pragma: no cover - depends on the torch build
        model = MODELS.build(cfg)
        device = torch.device('cpu')
    model.train()
    x = torch.randn((batch, 3) + tuple(model.student.image_size),
                    device=device)

    def flops(fn: Callable[[], Any]) -> float:
        with _mha_slow_path(), FlopCounterMode(display=False) as counter:
            fn()
        return float(counter.get_total_flops())

    out: Dict[str, Any] = dict(device=device.type, step_per_image={})
    # On the meta device the text of the largest class list costs nothing
    # to count; its longest prompt sets the length run to the end token.
    text_names = class_names(max(classes), names_kind)
    out['text_per_class'] = flops(lambda: model.compute_text_features(
        text_names)) / len(text_names)
    with torch.no_grad():
        out['text_per_class_to_eot'] = flops(lambda: encode_text_to_eot(
            model.teacher, text_names)) / len(text_names)
    out['text_tokens_to_eot'] = int(
        model.teacher.tokenize(text_names).argmax(-1).max()) + 1
    dim = model.teacher.embed_dim
    for num in classes:
        text = F.normalize(torch.randn(num, dim, device=device), dim=-1)
        teacher = flops(lambda: model.teacher_logits(x, text)) / batch
        step = flops(lambda: loss_with_text(model, x, text).backward())
        out['step_per_image'][str(num)] = step / batch
        out.setdefault('teacher_forward', teacher)
        out.setdefault('student_forward_backward', step / batch - teacher)
    model.eval()
    with torch.no_grad():
        out['student_inference'] = flops(
            lambda: model.student.logit_scale.float() *
            model.student_features(x) @ text.t()) / batch
    return out


def bench_roofline(bench: Optional[Bench], args: argparse.Namespace,
                   results: Dict[str, Any]) -> Dict[str, Any]:
    """FLOPs per image and the images/s bound at the peak throughput."""
    peak = args.peak_tflops * 1e12
    archs = [args.flops_arch]
    if bench is not None and args.arch not in archs:
        archs.append(args.arch)
    out: Dict[str, Any] = dict(peak_tflops=args.peak_tflops, archs={})
    for arch in archs:
        counts = count_flops(arch, args.classes, args.class_names)
        rows = []
        bounds = {}
        for num in args.classes:
            stored = counts['step_per_image'][str(num)]
            recompute = stored + counts['text_per_class'] * num / \
                args.batch_size
            bounds[str(num)] = dict(
                stored_gflops_per_image=stored / 1e9,
                recompute_gflops_per_image=recompute / 1e9,
                stored_bound_img_s=peak / stored,
                recompute_bound_img_s=peak / recompute)
            rows.append([num, stored / 1e9, recompute / 1e9, peak / stored,
                         peak / recompute])
        counts['bounds'] = bounds
        out['archs'][arch] = counts
        print_table(
            f'7. Roofline ({arch}): FLOPs per image and the images/s bound',
            ['classes', 'stored GFLOP/img', 'recompute GFLOP/img',
             'stored bound img/s', 'recompute bound img/s'], rows,
            [f'peak {args.peak_tflops:g} TFLOP/s used for the bound '
             '(default: H200 dense bf16, no sparsity)',
             'per image: teacher forward '
             f'{counts["teacher_forward"] / 1e9:.3g} GFLOP, student '
             'forward+backward '
             f'{counts["student_forward_backward"] / 1e9:.3g} GFLOP, student '
             f'inference {counts["student_inference"] / 1e9:.3g} GFLOP; text '
             f'encoder {counts["text_per_class"] / 1e9:.3g} GFLOP per class '
             f'({counts["text_per_class_to_eot"] / 1e9:.3g} when run to the '
             'end token only, see section 8)',
             f'recompute adds text GFLOP/class x classes / batch '
             f'{args.batch_size}; counted with FlopCounterMode on '
             f'{counts["device"]}'])
    # Measured throughput against the FLOPs of the measured arch.
    measured = out['archs'].get(args.arch)
    steps = results.get('train_step', {})
    if bench is not None and measured and steps:
        rows = []
        out['measured'] = {}
        on_gpu = bench.device.type == 'cuda' or args.peak_given
        for num, fig in steps.items():
            for mode in ('stored', 'recompute'):
                key = f'{mode}_gflops_per_image'
                gflops = measured['bounds'][num][key]
                img_s = fig[mode]['img_s']
                tflops = gflops * img_s / 1e3
                frac = tflops / args.peak_tflops if on_gpu else None
                out['measured'][f'{num}/{mode}'] = dict(
                    img_s=img_s, achieved_tflops=tflops,
                    fraction_of_peak=frac)
                rows.append([num, mode, img_s, tflops,
                             f'{frac * 100:.2f}%' if frac is not None
                             else 'n/a (not a GPU run)'])
        precision = results.get('precision', {})
        for name, fig in precision.items():
            if name == 'fp32':
                continue
            num = str(max(args.classes))
            gflops = measured['bounds'][num]['stored_gflops_per_image']
            img_s = fig['step']['img_s']
            tflops = gflops * img_s / 1e3
            frac = tflops / args.peak_tflops if on_gpu else None
            out['measured'][f'{num}/{name}'] = dict(
                img_s=img_s, achieved_tflops=tflops, fraction_of_peak=frac)
            rows.append([num, name, img_s, tflops,
                         f'{frac * 100:.2f}%' if frac is not None
                         else 'n/a (not a GPU run)'])
        print_table(
            f'7b. Measured ({args.arch} on {bench.device}) vs the FLOPs',
            ['classes', 'step', 'img/s', 'achieved TFLOP/s', 'of peak'],
            rows,
            ['achieved = counted FLOPs per image x measured images/s',
             f'of peak: against {args.peak_tflops:g} TFLOP/s; fp32 steps '
             'run on a lower peak than bf16 / fp16 ones'])
    return out


# --------------------------------------------------------------------------- #
# 8. Candidate speed-ups.
def encode_text_to_eot(model, names: Sequence[str],
                       normalize: bool = True) -> torch.Tensor:
    """``PromptedCLIP.encode_text`` over the tokens up to the last EOT only.

    The text tower's attention is causal and the feature is read at the end
    token, so tokens after the longest prompt's end token cannot change any
    feature: running only ``max(eot) + 1`` positions gives the same result.
    """
    clip = model.clip
    device = clip.token_embedding.weight.device
    # Token ids are built on the CPU: the length is read from them (also
    # when the model lives on the meta device, to count FLOPs).
    tokens = model.tokenize(names)
    eot = tokens.argmax(dim=-1)
    length = int(eot.max()) + 1
    tokens, eot = tokens[:, :length].to(device), eot.to(device)
    with torch.no_grad():
        x = clip.token_embedding(tokens)
    x = x.to(clip.transformer.get_cast_dtype())
    num, n_t = x.shape[0], model.text_prompt_length
    prompts = model.own_prompts('text')

    def insert(x: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        prompt = prompt.to(x.dtype).unsqueeze(0).expand(num, -1, -1)
        return torch.cat([x[:, :1], prompt, x[:, 1 + n_t:]], dim=1)

    if prompts:
        x = insert(x, prompts[0])
    x = x + clip.positional_embedding[:length].to(x.dtype)
    mask = clip.attn_mask[:length, :length]
    for i, block in enumerate(clip.transformer.resblocks):
        if 1 <= i < len(prompts):
            x = insert(x, prompts[i])
        if clip.transformer.batch_first:
            x = block(x, attn_mask=mask)
        else:
            x = block(x.transpose(0, 1), attn_mask=mask).transpose(0, 1)
    x = clip.ln_final(x)[torch.arange(num, device=x.device), eot]
    proj = clip.text_projection
    x = proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj
    return F.normalize(x, dim=-1) if normalize else x


def bench_ideas(bench: Bench) -> Dict[str, Any]:
    """Measure candidate speed-ups against the current code."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    args, model, device = bench.args, bench.model, bench.device
    teacher = model.teacher
    out: Dict[str, Any] = dict(text_to_eot={})
    rows = []
    with torch.no_grad():
        for num in args.classes:
            names = class_names(num, args.class_names)
            full = teacher.encode_text(names, normalize=True)
            short = encode_text_to_eot(teacher, names)
            diff = (full.float() - short.float()).abs().max().item()
            length = int(teacher.tokenize(names).argmax(-1).max()) + 1
            timed = time_interleaved(
                dict(full=lambda: teacher.encode_text(names, normalize=True),
                     to_eot=lambda: encode_text_to_eot(teacher, names)),
                args.iters, args.warmup, device)
            fig = dict(
                full=timed['full'], to_eot=timed['to_eot'], tokens=length,
                context_length=teacher.clip.context_length,
                speedup=timed['full']['median_ms'] /
                timed['to_eot']['median_ms'],
                max_abs_diff=diff)
            out['text_to_eot'][str(num)] = fig
            rows.append([f'text encoder to EOT, {num} classes',
                         timed['full']['median_ms'],
                         timed['to_eot']['median_ms'],
                         f'{fig["speedup"]:.2f}x', f'{diff:.1e}'])
    set_classes(model, bench.names)
    inputs = bench.batch()
    timed = bench.time_steps(
        dict(plain=dict(inputs=inputs),
             channels_last=dict(inputs=inputs.contiguous(
                 memory_format=torch.channels_last)),
             sdpa_math=dict(inputs=inputs,
                            around=lambda: sdpa_kernel(SDPBackend.MATH))))
    for key, label in (('channels_last', 'channels-last input, train step'),
                       ('sdpa_math', 'SDPA math kernel, train step')):
        fig = dict(current=timed['plain'], candidate=timed[key],
                   speedup=timed['plain']['median_ms'] /
                   timed[key]['median_ms'])
        out[key] = fig
        rows.append([label, timed['plain']['median_ms'],
                     timed[key]['median_ms'], f'{fig["speedup"]:.2f}x', '-'])
    tokens = out['text_to_eot'][str(args.classes[-1])]['tokens']
    print_table(
        '8. Candidate speed-ups (current vs candidate)',
        ['idea', 'current ms', 'candidate ms', 'speed-up',
         'max |diff|'], rows,
        ['text to EOT: run the teacher text tower (no grad) over the first '
         f'max(eot)+1 = {tokens} of {teacher.clip.context_length} tokens; '
         'its causal attention makes the features equal up to rounding',
         'channels-last: images in channels-last memory format (only the '
         'patch-embedding convolution can use it)',
         'SDPA math: the unfused attention kernel instead of the fused one '
         'the current code gets (a check, not a proposal)'])
    return out


# --------------------------------------------------------------------------- #
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Measure PromptKD speed, memory and scaling.')
    parser.add_argument(
        '--arch', choices=ARCHS, default=None,
        help='architecture of the measured sections: tiny (random small '
        'CLIPs, 64 px), base (ViT-B/16 teacher, ViT-S/16 student, 112 px) or '
        'real (ViT-L/14 teacher, ViT-B/16 student, 224 px). Default: real '
        'on CUDA, tiny on CPU')
    parser.add_argument(
        '--flops-arch', choices=ARCHS, default='real',
        help='architecture whose FLOPs the roofline section counts (the '
        'measured arch is counted too)')
    parser.add_argument(
        '--device', default=None,
        help='device, e.g. cpu or cuda:0. Default: cuda if available')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument(
        '--infer-batch-size', type=int, default=None,
        help='batch size of the inference section (default: --batch-size)')
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument(
        '--classes', type=int, nargs='+', default=[100, 1000],
        help='class counts of the step comparison; the other sections use '
        'the largest')
    parser.add_argument(
        '--class-names', choices=('imagenet', 'synthetic'),
        default='imagenet',
        help='class names (their token lengths set the cost of the text '
        'run to the end token): ImageNet\'s, or "synthetic object {i}"')
    parser.add_argument(
        '--sections', nargs='+', default=list(SECTIONS),
        help=f'subset of {", ".join(SECTIONS)} (or their numbers 1-8)')
    parser.add_argument(
        '--workers', type=int, default=min(8, os.cpu_count() or 1),
        help='DataLoader workers of the data section')
    parser.add_argument(
        '--num-images', type=int, default=64,
        help='JPEGs written for the data section')
    parser.add_argument(
        '--peak-tflops', type=float, default=None,
        help=f'peak throughput of the roofline bound (default '
        f'{DEFAULT_PEAK_TFLOPS:g}, H200 dense bf16)')
    parser.add_argument(
        '--threads', type=int, default=0,
        help='torch CPU threads; 0 (default) keeps torch\'s choice unless '
        'other processes keep the CPUs busy, then uses only the idle ones '
        '(at least 1): a descheduled thread stalls its peers at every op')
    parser.add_argument('--out', default=None, help='JSON file of figures')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)

    sections = []
    for item in args.sections:
        for name in item.split(','):
            name = name.strip()
            if name.isdigit() and 1 <= int(name) <= len(SECTIONS):
                name = SECTIONS[int(name) - 1]
            if name not in SECTIONS:
                parser.error(f'unknown section {name!r}; choose from '
                             f'{SECTIONS} or 1-{len(SECTIONS)}')
            if name not in sections:
                sections.append(name)
    args.sections = [s for s in SECTIONS if s in sections]
    if args.device is None:
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.arch is None:
        args.arch = 'real' if args.device.startswith('cuda') else 'tiny'
    args.peak_given = args.peak_tflops is not None
    if args.peak_tflops is None:
        args.peak_tflops = DEFAULT_PEAK_TFLOPS
    if args.iters < 1 or args.warmup < 0 or args.batch_size < 2:
        parser.error('need --iters >= 1, --warmup >= 0 and --batch-size >= '
                     '2 (the projector BatchNorm trains on the batch)')
    if 'data' in args.sections and args.warmup < 1:
        parser.error('the data section needs --warmup >= 1')
    args.classes = sorted(set(args.classes))
    return args


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load_average() -> Optional[List[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def auto_threads(device: torch.device) -> int:
    """Torch threads for a CPU run: torch's choice, capped at idle CPUs.

    With more busy threads than CPUs, each op waits for its slowest thread
    (8x slower tiny training steps with 2 threads than with 1, measured on
    2 CPUs at a load average of 3).
    """
    threads = torch.get_num_threads()
    load = _load_average()
    if device.type != 'cpu' or not load:
        return threads
    idle = (os.cpu_count() or 1) - load[0]
    return max(1, min(threads, int(idle + 0.5)))


def environment(args: argparse.Namespace,
                argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """What the figures were measured on, and the command line."""
    device = torch.device(args.device)
    argv = sys.argv[1:] if argv is None else list(argv)
    env = dict(
        command=' '.join([osp.basename(__file__)] + argv),
        device=str(device),
        device_name=(torch.cuda.get_device_name(device)
                     if device.type == 'cuda' else _cpu_name()),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
        float32_matmul_precision=torch.get_float32_matmul_precision(),
        python=platform.python_version(),
        # Other processes share the CPUs of small machines: say how busy.
        load_average_start=_load_average())
    for key in ('arch', 'flops_arch', 'batch_size', 'iters', 'warmup',
                'classes', 'class_names', 'sections', 'workers',
                'num_images', 'seed', 'threads'):
        env[key] = getattr(args, key)
    return env


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Run the selected sections, print their tables, write the JSON.

    Args:
        argv (Sequence[str], optional): Command line; None reads sys.argv.

    Returns:
        dict: All figures, as written to ``--out``.
    """
    args = parse_args(argv)
    args.threads = args.threads or auto_threads(torch.device(args.device))
    torch.set_num_threads(args.threads)
    import mmpromptkd  # noqa: F401  (registers the components)
    from mmengine.logging import MMLogger

    # Keep the tables readable: library INFO lines (e.g. "stored text
    # features") would repeat on every class count.
    MMLogger.get_instance('mmengine').setLevel('WARNING')
    env = environment(args, argv)
    print('PromptKD benchmark: ' + ', '.join(
        f'{k}={env[k]}' for k in ('device', 'device_name', 'cpu_count',
                                  'torch_threads', 'load_average_start',
                                  'arch', 'batch_size', 'iters', 'warmup',
                                  'classes')))
    results: Dict[str, Any] = dict(environment=env)
    measured = [s for s in args.sections if s != 'roofline']
    bench = None
    if measured:
        start = time.perf_counter()
        bench = Bench(args)
        bench.results = results
        results['build_s'] = time.perf_counter() - start
    runners = dict(
        train_step=bench_train_step, overhead=bench_overhead,
        inference=bench_inference, data=bench_data, memory=bench_memory,
        precision=bench_precision, ideas=bench_ideas)
    for section in args.sections:
        start = time.perf_counter()
        if section == 'roofline':
            results[section] = bench_roofline(bench, args, results)
        else:
            results[section] = runners[section](bench)
        results.setdefault('section_s', {})[section] = \
            time.perf_counter() - start
    env['load_average_end'] = _load_average()
    print(f'\nload average (1, 5, 15 min): start {env["load_average_start"]}, '
          f'end {env["load_average_end"]}; total '
          f'{sum(results.get("section_s", {}).values()):.0f} s')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
        print(f'\nFigures written to {args.out}')
    return results


if __name__ == '__main__':
    main()
