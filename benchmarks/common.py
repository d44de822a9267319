"""Model configs, timing and the shared state of the benchmark cases."""
import argparse
import contextlib
import copy
import os.path as osp
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from tool_scripts import status_mib  # noqa: F401  (for the studies)

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

SECTIONS = ('train_step', 'overhead', 'inference', 'data', 'memory',
            'precision', 'roofline', 'ideas', 'onnx', 'sources',
            'teacher_cache', 'compile')
ARCHS = ('tiny', 'base', 'real')
# NVIDIA H200 (SXM) dense bf16 tensor-core peak, without sparsity.
DEFAULT_PEAK_TFLOPS = 989.0
# Reference optimiser of stage (b).
SGD_CFG = dict(lr=0.005, momentum=0.9, weight_decay=5e-4)
# Training pipeline of the configs, used when the config file is missing.
FALLBACK_TRAIN_PIPELINE = [
    dict(type='LoadImageFromFileSafe'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        interpolation='bicubic',
        backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
PIPELINE_CONFIG = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets',
                           'dtd.py')
# Hooks of every config; used when the file is missing.
RUNTIME_CONFIG = osp.join(REPO_ROOT, 'configs', '_base_', 'default_runtime.py')
FALLBACK_CUSTOM_HOOKS = [dict(type='PromptKDTextFeaturesHook')]


# Architectures.
def _clip_cfg(embed_dim: int, image_size: int, patch_size: int, width: int,
              layers: int, text_width: int, text_layers: int) -> dict:
    """An open_clip model config dict with heads of width 32 or 64."""
    head = 64 if width % 64 == 0 and width >= 256 else 32
    text_head = 64 if text_width % 64 == 0 and text_width >= 256 else 32
    return dict(
        embed_dim=embed_dim,
        vision_cfg=dict(
            image_size=image_size,
            patch_size=patch_size,
            width=width,
            layers=layers,
            head_width=head),
        text_cfg=dict(
            context_length=77,
            vocab_size=49408,
            width=text_width,
            heads=text_width // text_head,
            layers=text_layers))


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
            depth=3,
            length=4)
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
            teacher=teacher,
            depth=9,
            length=4)
    if arch == 'real':
        # The image tower is exactly ViT-B/16; the text tower, dropped after
        # building, is kept small.
        student = copy.deepcopy(vit_b16)
        student['text_cfg'] = _clip_cfg(512, 224, 16, 768, 1, 64,
                                        1)['text_cfg']
        return dict(
            student=student,
            teacher=copy.deepcopy(open_clip.get_model_config('ViT-L-14')),
            depth=9,
            length=4)
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
            clip=dict(
                model_cfg=spec['teacher'],
                quick_gelu=True,
                precision=teacher_precision),
            vision_prompt_depth=spec['depth'],
            vision_prompt_length=spec['length'],
            text_prompt_depth=spec['depth'],
            text_prompt_length=spec['length']),
        projector=dict(type='FeatureProjector'),
        distill_loss=dict(type='KLLogitLoss', tau=1.0, loss_weight=1000.0),
        # Random weights throughout: the teacher's prompts are random too.
        allow_untrained_teacher=True)


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


def time_interleaved(fns: Dict[str, Callable[[],
                                             Any]], iters: int, warmup: int,
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


def print_table(title: str,
                header: Sequence[str],
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


def make_step(
    model,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    recompute_names: Optional[Sequence[str]] = None,
    amp_dtype: Optional[torch.dtype] = None,
    scaler: Optional['torch.amp.GradScaler'] = None,
    data_samples: Optional[list] = None
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
        data_samples (list[DataSample], optional): Samples with cached
            ``teacher_logits``, used instead of the teacher. Defaults to
            None.

    Returns:
        Callable[[], Tensor]: Runs the step and returns the detached loss.
    """
    device_type = inputs.device.type

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        autocast = (
            torch.autocast(device_type, dtype=amp_dtype)
            if amp_dtype is not None else contextlib.nullcontext())
        with autocast:
            if recompute_names is None:
                loss = model(inputs, data_samples, mode='loss')['loss_kd']
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
            k
            for k in state if k.startswith('projector.')
        }
        self._pristine = {k: state[k].detach().clone() for k in keys}
        self.names = class_names(max(args.classes), args.class_names)
        self.image_size = tuple(self.model.student.image_size)
        self.results: Dict[str, Any] = {}

    def reset(self) -> None:
        """Restore the prompts and projector (weights and BN statistics)."""
        self.model.load_state_dict(self._pristine, strict=False)
        self.model.train()

    def batch(self,
              batch_size: Optional[int] = None,
              seed_offset: int = 0) -> torch.Tensor:
        """A fixed batch of normalised random images on the device."""
        gen = torch.Generator().manual_seed(self.args.seed + seed_offset)
        shape = (batch_size or self.args.batch_size, 3) + self.image_size
        return torch.randn(shape, generator=gen).to(self.device)

    def time_steps(self,
                   variants: Dict[str, dict],
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
