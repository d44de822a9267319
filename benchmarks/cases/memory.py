"""Case 5: memory of a step, with and without gradient checkpointing."""
import contextlib
from typing import Any, Dict, Iterator, Sequence

import torch

from ..common import (Bench, make_optimizer, make_step, print_table,
                      set_classes, synchronize)


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
        dict(
            plain=dict(around=lambda: checkpointing(False)),
            checkpointing=dict(around=lambda: checkpointing(True))), inputs)
    rows = []
    for name in ('plain', 'checkpointing'):
        fig = out[name]
        fig['step'] = timed[name]
        row = [
            'on' if name == 'checkpointing' else 'off',
            fig['saved_bytes'] / 2**20
        ]
        if device.type == 'cuda':
            row.append(fig['cuda_step_peak_bytes'] / 2**20)
        rows.append(row + [fig['step']['median_ms']])
    plain, ckpt = out['plain'], out['checkpointing']
    out['saved_ratio'] = plain['saved_bytes'] / max(ckpt['saved_bytes'], 1)
    out['time_ratio'] = (
        ckpt['step']['median_ms'] / plain['step']['median_ms'])
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
        out['cuda_ratio'] = (
            plain['cuda_step_peak_bytes'] /
            max(ckpt['cuda_step_peak_bytes'], 1))
        header.append('CUDA step peak MiB')
        notes.append('CUDA step peak: max_memory_allocated during one step '
                     'minus the memory allocated before it')
    else:
        out['measure'] = 'saved_tensors_hooks bytes (CPU proxy)'
    print_table(f'5. Memory of a training step ({out["measure"]})',
                header + ['step ms'], rows, notes)
    return out
