"""Cases of training steps: 1, 2, 5, 6, 8, 11 and 12 of
docs/performance.md."""
import contextlib
import copy
import itertools
import os.path as osp
import tempfile
import time
from typing import Any, Dict, Iterator, Sequence

import numpy as np
import torch

from ..common import (REPO_ROOT, SGD_CFG, Bench, build_distiller, class_names,
                      distiller_cfg, elapsed, make_optimizer, make_step,
                      print_table, set_classes, summarize, synchronize,
                      time_interleaved)


def _ratio(slow: dict, fast: dict) -> float:
    return slow['median_ms'] / fast['median_ms']


def bench_train_step(bench: Bench) -> Dict[str, Any]:
    """1. Step time with stored versus per-step recomputed text features."""
    out, rows = {}, []
    for num in bench.args.classes:
        names = class_names(num, bench.args.class_names)
        store_s = set_classes(bench.model, names)
        timed = bench.time_steps(
            dict(stored={}, recompute=dict(recompute_names=names)))
        stored, recompute = timed['stored'], timed['recompute']
        saving = recompute['median_ms'] - stored['median_ms']
        out[str(num)] = fig = dict(
            stored=stored, recompute=recompute,
            speedup=_ratio(recompute, stored), store_once_ms=store_s * 1e3,
            break_even_steps=store_s * 1e3 / saving if saving > 0 else None)
        rows.append([num, stored['median_ms'], recompute['median_ms'],
                     f'{fig["speedup"]:.2f}x', stored['img_s'],
                     recompute['img_s'], fig['store_once_ms'],
                     fig['break_even_steps'] or '-'])
    print_table(
        '1. Training step: stored vs recomputed teacher text features', [
            'classes', 'stored ms', 'recompute ms', 'ratio', 'stored img/s',
            'recompute img/s', 'store once ms', 'break-even steps'
        ], rows, [f'batch {bench.args.batch_size}; ratio = recompute / '
                  'stored; store once: paid once per run, tokenising '
                  'included'])
    return out


def bench_overhead(bench: Bench) -> Dict[str, Any]:
    """2. A Runner iteration versus a bare loop over the same batches."""
    from unittest import mock

    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    from mmpretrain.structures import DataSample
    from torch.utils.data import DataLoader

    args, model, device = bench.args, bench.model, bench.device
    set_classes(model, bench.names)
    bench.reset()
    gen = torch.Generator().manual_seed(args.seed)
    images = torch.randint(0, 256, (args.batch_size * 4, 3) +
                           bench.image_size, generator=gen, dtype=torch.uint8)

    class Packed(list):
        """In-memory uint8 CHW images packed like ``PackInputs``."""
        # Class names are read by the text-features hook; labels never are.
        metainfo = dict(classes=tuple(bench.names))

    packed = Packed(dict(inputs=image, data_samples=DataSample())
                    for image in images)
    fetch = itertools.chain.from_iterable(itertools.repeat(DataLoader(
        packed, batch_size=args.batch_size, shuffle=True,
        collate_fn=pseudo_collate)))
    optimizer = make_optimizer(model)

    def bare_step() -> None:
        # Fetch, data preprocessor, forward, backward, SGD step.
        data = model.data_preprocessor(next(fetch), True)
        loss = sum(model(**data, mode='loss').values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    class Clock(Hook):
        """Times Runner iterations, with a timed bare one after each."""
        # Last of all hooks: the Runner interval covers its data loading,
        # every hook and the optimiser step.
        priority = 'LOWEST'
        runner_times, bare_times = [], []

        def before_train(self, runner) -> None:
            synchronize(device)
            self.start = time.perf_counter()

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None) -> None:
            synchronize(device)
            self.runner_times.append(time.perf_counter() - self.start)
            self.bare_times.append(elapsed(bare_step, device))
            self.start = time.perf_counter()

    clock = Clock()
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', '_base_', 'default_runtime.py'))
    # Neither logging nor checkpoints are per-iteration costs of a run.
    default_hooks = dict(
        copy.deepcopy(dict(cfg.default_hooks)),
        logger=dict(type='LoggerHook', interval=10**6),
        checkpoint=dict(type='CheckpointHook', interval=-1, save_last=False))
    # The resume and empty-data guards act once per run or epoch and need
    # an epoch-based loop over a labeled dataset: not measured.
    guards = ('EpochSeedHook', 'RandomStateHook', 'EmptyClassCheckHook')
    custom_hooks = [copy.deepcopy(h) for h in cfg.custom_hooks
                    if h.get('type') not in guards]
    # mmengine moves the model to its own choice of device (CUDA when
    # present); keep it on the device under test.
    with tempfile.TemporaryDirectory(prefix='promptkd_bench_runner_',
                                     ignore_cleanup_errors=True) as work_dir, \
            mock.patch('mmengine.runner.runner.get_device',
                       lambda: str(device)):
        runner = Runner(
            model=model, work_dir=work_dir,
            train_dataloader=dict(
                dataset=packed, batch_size=args.batch_size, num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=True),
                collate_fn=dict(type='pseudo_collate')),
            train_cfg=dict(type='IterBasedTrainLoop',
                           max_iters=args.warmup + args.iters),
            optim_wrapper=dict(optimizer=dict(type='SGD', **SGD_CFG)),
            default_hooks=default_hooks, custom_hooks=custom_hooks + [clock],
            default_scope='mmpromptkd', randomness=dict(seed=args.seed),
            log_level='WARNING')
        runner.train()
    bench.reset()
    bare_s = summarize(clock.bare_times[args.warmup:])
    runner_s = summarize(clock.runner_times[args.warmup:])
    overhead = runner_s['median_ms'] / bare_s['median_ms'] - 1
    hooks = sorted(type(h).__name__ for h in runner.hooks if h is not clock)
    out = dict(bare=bare_s, runner=runner_s, overhead_pct=overhead * 100,
               overhead_ms=runner_s['median_ms'] - bare_s['median_ms'],
               hooks=hooks)
    batch = args.batch_size
    print_table(
        '2. Framework overhead: mmengine Runner vs bare loop',
        ['loop', 'ms/iter', 'img/s'],
        [[name, s['median_ms'], batch / s['median_ms'] * 1e3]
         for name, s in (('bare', bare_s), ('Runner', runner_s))], [
            f'overhead {overhead * 100:+.1f}% ({out["overhead_ms"]:+.2f} '
            f'ms/iter); batch {batch}, {len(bench.names)} classes; hooks: '
            f'{", ".join(hooks)}'])
    return out


@contextlib.contextmanager
def saved_tensor_meter(exclude: Sequence[torch.Tensor]) -> Iterator[dict]:
    """Count ``bytes`` and ``tensors`` of the distinct storages saved for
    backward, those of ``exclude`` (parameters, buffers) left out."""
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    meter = dict(bytes=0, tensors=0)

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in skip:
            skip.add(storage.data_ptr())
            meter['bytes'] += storage.nbytes()
            meter['tensors'] += 1
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield meter


def bench_memory(bench: Bench) -> Dict[str, Any]:
    """5. Activation memory of a step with and without checkpointing."""
    args, model, device = bench.args, bench.model, bench.device
    cuda = device.type == 'cuda'
    set_classes(model, bench.names)
    inputs = bench.batch()
    owned = [*model.parameters(), *model.buffers(),
             *model.teacher.parameters(), *model.teacher.buffers()]

    def checkpointing(flag: bool) -> contextlib.nullcontext:
        # Read at every forward: equal to building with the flag set.
        model.student.grad_checkpointing = flag
        return contextlib.nullcontext()

    out: Dict[str, Any] = {}
    for name, flag in (('plain', False), ('checkpointing', True)):
        bench.reset()
        step = make_step(model, make_optimizer(model), inputs)
        fig = out[name] = {}
        checkpointing(flag)
        step()  # the optimiser state exists before measuring
        if cuda:
            synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            step()
            synchronize(device)
            fig['cuda_peak_bytes'] = torch.cuda.max_memory_allocated(device)
            fig['cuda_step_peak_bytes'] = fig['cuda_peak_bytes'] - base
        with saved_tensor_meter(owned) as meter:
            step()
        fig['saved_bytes'] = meter['bytes']
        fig['saved_tensors'] = meter['tensors']
    timed = bench.time_steps(
        dict(plain=dict(around=lambda: checkpointing(False)),
             checkpointing=dict(around=lambda: checkpointing(True))), inputs)
    checkpointing(False)
    rows = []
    for name, switch in (('plain', 'off'), ('checkpointing', 'on')):
        fig = out[name]
        fig['step'] = timed[name]
        rows.append([switch, fig['saved_bytes'] / 2**20] +
                    ([fig['cuda_step_peak_bytes'] / 2**20] if cuda else []) +
                    [fig['step']['median_ms']])
    plain, ckpt = out['plain'], out['checkpointing']
    out['saved_ratio'] = plain['saved_bytes'] / max(ckpt['saved_bytes'], 1)
    out['time_ratio'] = _ratio(ckpt['step'], plain['step'])
    out['measure'] = 'saved_tensors_hooks bytes (CPU proxy)'
    if cuda:
        out['measure'] = ('torch.cuda.max_memory_allocated, and '
                          'saved_tensors_hooks bytes')
        out['cuda_ratio'] = plain['cuda_step_peak_bytes'] / max(
            ckpt['cuda_step_peak_bytes'], 1)
    print_table(f'5. Memory of a training step ({out["measure"]})',
                ['student grad checkpointing', 'saved MiB'] +
                ['CUDA step peak MiB'] * cuda + ['step ms'], rows, [
                    f'saved ratio off/on {out["saved_ratio"]:.2f}x; step '
                    f'time on/off {out["time_ratio"]:.2f}x; batch '
                    f'{args.batch_size}'])
    return out


def bench_precision(bench: Bench) -> Dict[str, Any]:
    """6. bf16 / fp16 autocast: step time and agreement with fp32."""
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
    out, steps, ref = {}, {}, None
    for name, dtype, teacher_precision in variants:
        variant = model
        if teacher_precision != 'fp32':
            # The fp32 model's weights; the half teacher stores its own text
            # features, as a run with this config would.
            variant = build_distiller(distiller_cfg(
                args.arch, teacher_precision), device, args.seed)
            variant.load_state_dict(model.state_dict())
            variant.teacher.load_state_dict(model.teacher.state_dict())
            set_classes(variant, bench.names, force=True)
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype,
                                             enabled=dtype is not None):
            logits = dict(
                student=variant.student_logits(
                    inputs, for_training=True).float(),
                teacher=variant.teacher_logits(
                    inputs, variant.text_features).float())
        logits['loss'] = variant.distill_loss(logits['student'],
                                              logits['teacher'])
        ref = ref or logits
        diff = {k: (logits[k] - ref[k]).abs() for k in logits}
        out[name] = dict(
            max_abs_diff_student_logits=diff['student'].max().item(),
            max_abs_diff_teacher_logits=diff['teacher'].max().item(),
            loss_rel_diff=(diff['loss'] /
                           ref['loss'].abs().clamp_min(1e-12)).item())
        steps[name] = dict(amp_dtype=dtype, model=variant)
        if dtype == torch.float16:
            steps[name]['scaler'] = torch.amp.GradScaler(device.type)
    timed = bench.time_steps(steps, inputs)
    del steps
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    rows = []
    for name, fig in out.items():
        fig['step'] = timed[name]
        fig['speedup_vs_fp32'] = _ratio(timed['fp32'], timed[name])
        rows.append([name, timed[name]['median_ms'],
                     f'{fig["speedup_vs_fp32"]:.2f}x',
                     fig['max_abs_diff_student_logits'],
                     fig['max_abs_diff_teacher_logits'],
                     fig['loss_rel_diff']])
    print_table('6. Precision: step time and agreement with fp32', [
        'variant', 'step ms', 'speed vs fp32', 'max|dS|', 'max|dT|',
        'loss rel diff'
    ], rows, [
        'dS / dT: student / teacher logits vs fp32 on the same batch and '
        f'weights; batch {args.batch_size}, {len(bench.names)} classes'
    ])
    return out


def text_truncation(model, truncate: bool):
    """A shallow copy of a ``PromptedCLIP`` with ``truncate_text`` set."""
    model = copy.copy(model)
    model.truncate_text, model._text_cache = truncate, None
    return model


def bench_ideas(bench: Bench) -> Dict[str, Any]:
    """8. Candidate speed-ups measured against the current code."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    args, teacher = bench.args, bench.model.teacher
    out: Dict[str, Any] = dict(text_to_eot={})
    rows = []
    towers = dict(full=text_truncation(teacher, False),
                  to_eot=text_truncation(teacher, True))
    with torch.no_grad():
        for num in args.classes:
            names = class_names(num, args.class_names)
            encode = {k: lambda m=m: m.encode_text(names, normalize=True)
                      for k, m in towers.items()}
            diff = (encode['full']().float() -
                    encode['to_eot']().float()).abs().max().item()
            timed = time_interleaved(encode, args.iters, args.warmup,
                                     bench.device)
            out['text_to_eot'][str(num)] = fig = dict(
                timed, speedup=_ratio(timed['full'], timed['to_eot']),
                tokens=int(teacher.tokenize(names).argmax(-1).max()) + 1,
                context_length=teacher.clip.context_length,
                max_abs_diff=diff)
            rows.append([f'text encoder to EOT, {num} classes',
                         timed['full']['median_ms'],
                         timed['to_eot']['median_ms'],
                         f'{fig["speedup"]:.2f}x', f'{diff:.1e}'])
    set_classes(bench.model, bench.names)
    inputs = bench.batch()
    timed = bench.time_steps(dict(
        plain=dict(inputs=inputs),
        channels_last=dict(
            inputs=inputs.contiguous(memory_format=torch.channels_last)),
        sdpa_math=dict(inputs=inputs,
                       around=lambda: sdpa_kernel(SDPBackend.MATH))))
    for key, label in (('channels_last', 'channels-last input, train step'),
                       ('sdpa_math', 'SDPA math kernel, train step')):
        out[key] = fig = dict(current=timed['plain'], candidate=timed[key],
                              speedup=_ratio(timed['plain'], timed[key]))
        rows.append([label, timed['plain']['median_ms'],
                     timed[key]['median_ms'], f'{fig["speedup"]:.2f}x', '-'])
    tokens = out['text_to_eot'][str(args.classes[-1])]['tokens']
    print_table(
        '8. Candidate speed-ups (current vs candidate)',
        ['idea', 'current ms', 'candidate ms', 'speed-up', 'max |diff|'], rows,
        ['text to EOT: the teacher text tower over the whole context against '
         f'its first {tokens} of {teacher.clip.context_length} tokens (the '
         'default)'])
    return out


def cache_bytes_per_view(num_classes: int, text_dim: int,
                         views: int = 2, images: int = 64,
                         topk: int = 20) -> Dict[str, float]:
    """Per storage, bytes per view of a written cache's arrays."""
    from mmpromptkd.teacher_cache import TeacherLogitCache
    sizes = {}
    rng = np.random.default_rng(0)
    names = [f'c{i}' for i in range(num_classes)]
    with tempfile.TemporaryDirectory() as tmp:
        for storage in ('float32', 'float16', 'topk'):
            cache = TeacherLogitCache.create(
                osp.join(tmp, storage), views, images, names,
                rng.normal(size=(num_classes, text_dim)), storage=storage,
                topk=min(topk, num_classes - 1) if storage == 'topk' else
                None)
            for view in range(views):
                cache.put(view, range(images), [(0, 0, 1, 1)] * images,
                          [False] * images,
                          rng.normal(size=(images, num_classes)))
            arrays = cache.commit().arrays
            sizes[storage] = sum(
                a.nbytes for name, a in arrays.items()
                if name != 'text_features') / (views * images)
    return sizes


def bench_teacher_cache(bench: Bench) -> Dict[str, Any]:
    """11. Step time on cached teacher logits versus with the teacher."""
    from mmpretrain.structures import DataSample

    model, out, rows = bench.model, {}, []
    for num in bench.args.classes:
        set_classes(model, bench.names[:num])
        inputs = bench.batch()
        with torch.no_grad():
            logits = model.teacher_logits(inputs, model.text_features)
            samples = [DataSample(teacher_logits=row) for row in logits]
            # One state, both ways: the same loss.
            online = model(inputs, mode='loss')['loss_kd'].item()
            difference = abs(online - model(
                inputs, samples, mode='loss')['loss_kd'].item()) / max(
                    abs(online), 1e-12)
        bench.reset()
        timed = time_interleaved(
            dict(online=make_step(model, make_optimizer(model), inputs),
                 cached=make_step(model, make_optimizer(model), inputs,
                                  data_samples=samples),
                 # What recording costs per batch: the teacher's forward.
                 teacher=lambda: model.teacher_logits(
                     inputs, model.text_features)),
            bench.args.iters, bench.args.warmup, bench.device)
        sizes = cache_bytes_per_view(num, model.text_features.shape[1])
        out[str(num)] = fig = dict(
            online=timed['online'], cached=timed['cached'],
            speedup=_ratio(timed['online'], timed['cached']),
            teacher_forward=timed['teacher'], bytes_per_view=sizes,
            loss_rel_difference=difference)
        rows.append([num, timed['online']['median_ms'],
                     timed['cached']['median_ms'], f'{fig["speedup"]:.2f}x',
                     timed['teacher']['median_ms'], *sizes.values()])
    print_table(
        '11. Training step: cached teacher logits vs running the teacher', [
            'classes', 'teacher+student ms', 'student-only ms', 'ratio',
            'teacher fwd ms', 'B/view f32', 'B/view f16', 'B/view top-20'
        ], rows, [
            f'batch {bench.args.batch_size}; ratio = with the teacher / on '
            'cached logits; teacher fwd: the cost of recording a batch'])
    return out


def bench_compile(bench: Bench) -> Dict[str, Any]:
    """12. Step time with compiled image encoders versus eager."""
    model, args = bench.model, bench.args
    num = max(args.classes)
    set_classes(model, bench.names[:num])
    compiled = build_distiller(dict(bench.cfg, compile=True), bench.device,
                               args.seed)
    bench.reset()  # earlier cases trained the shared model
    compiled.load_state_dict(model.state_dict())
    inputs = bench.batch()
    with torch.no_grad():  # the same weights: the same logits
        model.eval()
        compiled.eval()
        difference = (model.student_logits(inputs) -
                      compiled.student_logits(inputs)).abs().max().item()
        model.train()
        compiled.train()
    steps = dict(eager=make_step(model, make_optimizer(model), inputs),
                 compiled=make_step(compiled, make_optimizer(compiled),
                                    inputs))
    # The first step compiles forward and backward.
    compile_s = elapsed(steps['compiled'], bench.device)
    timed = time_interleaved(steps, args.iters, args.warmup, bench.device)
    out = dict(timed, speedup=_ratio(timed['eager'], timed['compiled']),
               compile_s=compile_s, max_abs_logit_diff=difference)
    print_table(
        '12. Training step: compile=True vs eager',
        ['classes', 'eager ms', 'compiled ms', 'ratio', 'compile s',
         'max |logit diff|'],
        [[num, timed['eager']['median_ms'], timed['compiled']['median_ms'],
          f'{out["speedup"]:.2f}x', compile_s, difference]], [
            f'batch {args.batch_size}; ratio = eager / compiled; compile s: '
            'the first step, paid once per process'])
    return out
