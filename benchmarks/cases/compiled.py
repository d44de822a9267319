"""Case 12: a step with ``compile=True`` versus eager."""
import copy
import time
from typing import Any, Dict

import torch

from ..common import (Bench, build_distiller, make_optimizer, make_step,
                      print_table, set_classes, synchronize, time_interleaved)


def bench_compile(bench: Bench) -> Dict[str, Any]:
    """Step time of the distiller with compiled image encoders vs eager."""
    model, args = bench.model, bench.args
    num = max(args.classes)
    set_classes(model, bench.names[:num])
    compiled = build_distiller(
        dict(copy.deepcopy(bench.cfg), compile=True), bench.device,
        args.seed)
    bench.reset()  # earlier sections trained the shared model
    compiled.load_state_dict(model.state_dict())
    inputs = bench.batch()
    with torch.no_grad():  # the same weights: the same logits
        model.eval()
        compiled.eval()
        difference = (model.student_logits(inputs) -
                      compiled.student_logits(inputs)).abs().max().item()
        model.train()
        compiled.train()
    steps = dict(
        eager=make_step(model, make_optimizer(model), inputs),
        compiled=make_step(compiled, make_optimizer(compiled), inputs))
    synchronize(bench.device)
    start = time.perf_counter()
    steps['compiled']()  # compiles forward and backward
    synchronize(bench.device)
    compile_s = time.perf_counter() - start
    timed = time_interleaved(steps, args.iters, args.warmup, bench.device)
    out = dict(
        eager=timed['eager'],
        compiled=timed['compiled'],
        speedup=timed['eager']['median_ms'] / timed['compiled']['median_ms'],
        compile_s=compile_s,
        max_abs_logit_diff=difference)
    print_table(
        '12. Training step: compile=True vs eager', [
            'classes', 'eager ms', 'compiled ms', 'ratio', 'compile s',
            'max |logit diff|'
        ], [[
            num, out['eager']['median_ms'], out['compiled']['median_ms'],
            f'{out["speedup"]:.2f}x', compile_s, difference
        ]], [
            f'batch {args.batch_size}; torch.compile of the student and '
            'teacher image encoders (default options); ratio = eager / '
            'compiled; compile s: the first step, paid once per process'
        ])
    return out
