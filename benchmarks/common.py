"""Models, options, timing and tables shared by the studies."""
import argparse
import contextlib
import copy
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from tool_scripts import status_mib  # noqa: F401  (for the studies)

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
ARCHS = ('tiny', 'base', 'real')
# NVIDIA H200 (SXM) dense bf16 tensor-core peak, without sparsity.
DEFAULT_PEAK_TFLOPS = 989.0
# Reference optimiser of stage (b).
SGD_CFG = dict(lr=0.005, momentum=0.9, weight_decay=5e-4)
_OPTIONS = dict(
    arch=dict(choices=ARCHS, help='architecture of the measured models'),
    device=dict(help='device, e.g. cpu or cuda:0'),
    out=dict(help='JSON file of the figures'),
    batch_size=dict(type=int, help='images per step'),
    iters=dict(type=int, help='timed rounds'),
    warmup=dict(type=int, help='rounds left out of the timing'),
    classes=dict(type=int, help='class names stored'),
    seed=dict(type=int, help='seed of weights and batches'),
    threads=dict(type=int, help="torch CPU threads (0: torch's choice, "
                 'capped at the idle CPUs)'),
    steps=dict(type=int, help='training steps'))


def arg_parser(doc: str, **defaults) -> argparse.ArgumentParser:
    """A parser with the shared options of ``defaults`` (``--batch-size``)."""
    parser = argparse.ArgumentParser(description=doc.strip().split('\n')[0])
    for key, default in defaults.items():
        parser.add_argument('--' + key.replace('_', '-'), default=default,
                            **_OPTIONS[key])
    return parser


def write_json(path: Optional[str], obj: Any, indent: int = 2,
               overwrite: bool = True) -> None:
    """Write ``obj`` to ``path`` (if given), creating its folder; an
    existing file is an error unless ``overwrite``."""
    if path:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w' if overwrite else 'x') as f:
            json.dump(obj, f, indent=indent)


def run_snippet(code: str, *args) -> Any:
    """The JSON that ``code`` prints after ``RESULT`` in a fresh process."""
    code = f'import sys\nsys.path[:0] = [{REPO_ROOT!r}]\n' + code
    out = subprocess.run([sys.executable, '-c', code, *map(str, args)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.rsplit('RESULT ', 1)[1])


def quiet_mmengine() -> None:
    """Register the components; keep library INFO lines out of tables."""
    import mmpromptkd  # noqa: F401
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel('WARNING')


def _clip_cfg(embed_dim: int, image_size: int, patch_size: int, width: int,
              layers: int, text_width: int, text_layers: int) -> dict:
    """An open_clip model config dict with heads of width 32 or 64."""
    head = 64 if width % 64 == 0 and width >= 256 else 32
    text_head = 64 if text_width % 64 == 0 and text_width >= 256 else 32
    return dict(
        embed_dim=embed_dim,
        vision_cfg=dict(image_size=image_size, patch_size=patch_size,
                        width=width, layers=layers, head_width=head),
        text_cfg=dict(context_length=77, vocab_size=49408, width=text_width,
                      heads=text_width // text_head, layers=text_layers))


def arch_clips(arch: str) -> Dict[str, Any]:
    """``student``, ``teacher`` configs, prompt ``depth`` and ``length``."""
    import open_clip
    if arch == 'tiny':
        # Text tower sized so that encoding one class costs about a tenth
        # of a training step per image, as with the real pair.
        return dict(student=_clip_cfg(64, 64, 8, 64, 4, 64, 1),
                    teacher=_clip_cfg(96, 64, 8, 128, 6, 64, 3), depth=3,
                    length=4)
    vit_b16 = copy.deepcopy(open_clip.get_model_config('ViT-B-16'))
    # The student's text tower is dropped after building: keep it small.
    if arch == 'base':
        # ViT-S/16 student at 112 px, a quarter of the 224 px image cost,
        # so that a CPU step takes seconds.
        vit_b16['vision_cfg']['image_size'] = 112
        return dict(student=_clip_cfg(384, 112, 16, 384, 12, 64, 1),
                    teacher=vit_b16, depth=9, length=4)
    if arch == 'real':
        teacher = copy.deepcopy(open_clip.get_model_config('ViT-L-14'))
        vit_b16['text_cfg'] = _clip_cfg(512, 224, 16, 768, 1, 64,
                                        1)['text_cfg']
        return dict(student=vit_b16, teacher=teacher, depth=9, length=4)
    raise ValueError(f'unknown arch {arch!r}; expected one of {ARCHS}')


def distiller_cfg(arch: str, teacher_precision: str = 'fp32') -> dict:
    """Config of a ``PromptKDDistiller`` of ``arch`` with random weights."""
    spec = arch_clips(arch)
    prompts = dict(vision_prompt_depth=spec['depth'],
                   vision_prompt_length=spec['length'])
    return dict(
        type='PromptKDDistiller',
        student=dict(type='PromptedCLIP', **prompts,
                     clip=dict(model_cfg=spec['student'], quick_gelu=True)),
        teacher=dict(type='PromptedCLIP', **prompts,
                     clip=dict(model_cfg=spec['teacher'], quick_gelu=True,
                               precision=teacher_precision),
                     text_prompt_depth=spec['depth'],
                     text_prompt_length=spec['length']),
        projector=dict(type='FeatureProjector'),
        distill_loss=dict(type='KLLogitLoss', tau=1.0, loss_weight=1000.0),
        # Random weights throughout: the teacher's prompts are random too.
        allow_untrained_teacher=True)


def class_names(num: int, kind: str = 'imagenet') -> List[str]:
    """``num`` distinct ImageNet (numbered again beyond 1000) or
    'synthetic' class names; only their token lengths matter."""
    if kind == 'synthetic':
        return [f'synthetic object {i}' for i in range(num)]
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES as base
    return [base[i % len(base)] + (f' {i // len(base)}' if i >= len(base)
                                   else '') for i in range(num)]


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work so that wall-clock times are real."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def elapsed(fn: Callable[[], Any], device: torch.device) -> float:
    """Wall-clock seconds of ``fn()``, queued CUDA work included."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def random_images(batch_size: int, image_size: Sequence[int], seed: int,
                  device: torch.device) -> torch.Tensor:
    """A seeded batch of normalised random images on ``device``."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((batch_size, 3) + tuple(image_size),
                       generator=gen).to(device)


def summarize(times: Sequence[float]) -> Dict[str, float]:
    """Median, min and max (ms) of per-iteration times in seconds."""
    return dict(median_ms=statistics.median(times) * 1e3,
                min_ms=min(times) * 1e3, max_ms=max(times) * 1e3,
                n=len(times))


def time_interleaved(fns: Dict[str, Callable[[], Any]], iters: int,
                     warmup: int, device: torch.device,
                     batch_size: Optional[int] = None
                     ) -> Dict[str, Dict[str, float]]:
    """:func:`summarize` (and ``img_s`` given ``batch_size``) of each
    function; round ``i`` runs each once, starting with a different one,
    so that drifts in the machine's load hit all alike."""
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    times: Dict[str, List[float]] = {name: [] for name in names}
    for i in range(iters):
        for j in range(len(names)):
            name = names[(i + j) % len(names)]
            times[name].append(elapsed(fns[name], device))
    stats = {name: summarize(t) for name, t in times.items()}
    for fig in stats.values():
        if batch_size:
            fig['img_s'] = batch_size / fig['median_ms'] * 1e3
    return stats


def _fmt(value: Any) -> str:
    if isinstance(value, float) and (value == 0 or 0.01 <= abs(value) < 1e5):
        return f'{value:.3g}' if abs(value) < 10 else f'{value:,.1f}'
    return f'{value:.3g}' if isinstance(value, float) else str(value)


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


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A Markdown table of ``header`` and ``rows`` (lists of cells)."""
    lines = ['| ' + ' | '.join(map(str, r)) + ' |' for r in [header, *rows]]
    lines.insert(1, '|' + '---|' * len(header))
    return '\n'.join(lines)


def build_distiller(cfg: dict, device: torch.device, seed: int):
    """Build a distiller from ``cfg`` with seeded random weights."""
    from mmpromptkd.registry import MODELS
    torch.manual_seed(seed)
    return MODELS.build(copy.deepcopy(cfg)).to(device).train()


def trained_state(model) -> Dict[str, torch.Tensor]:
    """Copies of the prompts and the projector (BN statistics included)."""
    keys = set(model.trainable_parameters())
    return {k: v.detach().clone() for k, v in model.state_dict().items()
            if k in keys or k.startswith('projector.')}


def set_classes(model, names: Sequence[str], force: bool = False) -> float:
    """Seconds of storing the teacher text features of ``names`` (0 when
    stored already, unless ``force``)."""
    if not force and tuple(names) == tuple(model.class_names) and \
            len(model.text_features):
        return 0.0
    # Training refuses to replace stored features of other classes: drop
    # them first, as a fresh run would start without any.
    model.text_features = model.text_features.new_zeros(
        (0, model.text_features.shape[1]))
    model.class_names = ()
    return elapsed(lambda: model.prepare_text_features(names, True),
                   model.text_features.device)


def make_optimizer(model) -> torch.optim.Optimizer:
    """SGD of the reference over the trainable parameters only."""
    return torch.optim.SGD(
        list(model.trainable_parameters().values()), **SGD_CFG)


def loss_with_text(model, inputs: torch.Tensor,
                   text: torch.Tensor) -> torch.Tensor:
    """``model(inputs, mode='loss')``'s loss on normalised ``text`` (C, D)."""
    teacher = model.teacher_logits(inputs, text)
    student = model.student.logit_scale.float() * \
        model.student_features(inputs) @ text.t()
    return model.distill_loss(student, teacher)


def make_step(model, optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
              recompute_names: Optional[Sequence[str]] = None,
              amp_dtype: Optional[torch.dtype] = None, scaler=None,
              data_samples: Optional[list] = None
              ) -> Callable[[], torch.Tensor]:
    """A closure running one training step, returning the detached loss
    (also its ``last_loss``); ``recompute_names``: recompute the teacher
    text features of these classes as the reference does;
    ``data_samples``: with cached teacher logits."""
    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(inputs.device.type, dtype=amp_dtype,
                            enabled=amp_dtype is not None):
            if recompute_names is None:
                loss = model(inputs, data_samples, mode='loss')['loss_kd']
            else:
                with torch.no_grad():
                    text = model.teacher.encode_text(
                        recompute_names, normalize=True).float()
                loss = loss_with_text(model, inputs, text)
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
    """State shared by the cases of ``speed``: options, model, figures."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = torch.device(args.device)
        self.cfg = distiller_cfg(args.arch)
        self.model = build_distiller(self.cfg, self.device, args.seed)
        # Cases train the same model; each starts again from these weights.
        self._pristine = trained_state(self.model)
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
        return random_images(batch_size or self.args.batch_size,
                             self.image_size, self.args.seed + seed_offset,
                             self.device)

    def stored_step(self) -> Dict[str, Any]:
        """``train_step``'s stored step at the most classes (or timed now)."""
        step = self.results.get('train_step', {}).get(
            str(max(self.args.classes)))
        if step is None:
            set_classes(self.model, self.names)
            step = self.time_steps(dict(stored={}))
        return step['stored']

    def time_steps(self, variants: Dict[str, dict],
                   inputs: Optional[torch.Tensor] = None
                   ) -> Dict[str, Dict[str, float]]:
        """:func:`time_interleaved` figures and last ``loss`` of training
        steps from reset weights; ``variants``: :func:`make_step` keyword
        arguments by name, plus ``model``, ``inputs`` and ``around`` (a
        context manager factory entered around each step)."""
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
                                 self.device, len(inputs))
        for name, fig in stats.items():
            fig['loss'] = float(steps[name].last_loss)
        return stats
