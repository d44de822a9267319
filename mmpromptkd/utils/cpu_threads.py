"""How many torch threads a CPU run should use."""
import os
from typing import Optional

import torch
from torch import nn

# Models with fewer parameters than this (the tiny demo pair: 11.9 M) gain
# nothing from a second thread on CPU and lose most when it competes with
# other jobs (benchmarks/cpu_threads.py).
SMALL_MODEL_PARAMETERS = 30_000_000


def available_cpus() -> int:
    """int: CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose_cpu_threads(model: Optional[nn.Module] = None,
                       load: Optional[float] = None) -> int:
    """Torch intra-op threads for a CPU run of ``model``.

    Torch's default if ``OMP_NUM_THREADS`` is set; 1 for a model (teacher
    included) under :data:`SMALL_MODEL_PARAMETERS`; else torch's default
    capped at the CPUs that other jobs leave idle, at least 1.

    Args:
        model (nn.Module, optional): The model to run.
        load (float, optional): Load average to assume (by default the
            machine's).
    """
    default = torch.get_num_threads()
    if os.environ.get('OMP_NUM_THREADS'):
        return default
    if model is not None:
        params = sum(p.numel() for p in model.parameters())
        teacher = getattr(model, 'teacher', None)
        if isinstance(teacher, nn.Module):
            params += sum(p.numel() for p in teacher.parameters())
        if params < SMALL_MODEL_PARAMETERS:
            return 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    idle = available_cpus() - load
    return max(1, min(default, int(idle + 0.5)))
