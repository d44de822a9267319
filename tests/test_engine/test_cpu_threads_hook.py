"""CPU thread choice: small models one thread, large ones the idle CPUs."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from mmpromptkd.utils import cpu_threads
from mmpromptkd.utils.cpu_threads import (SMALL_MODEL_PARAMETERS,
                                          choose_cpu_threads)


class _Model(nn.Module):

    def __init__(self, params: int, teacher_params: int = 0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(params))
        # Held outside the module tree, as the distiller holds its teacher.
        object.__setattr__(self, 'teacher',
                           nn.Linear(teacher_params, 1, bias=False)
                           if teacher_params else None)


@pytest.fixture
def machine(monkeypatch):
    """8 CPUs, torch's default 8 threads, no OMP_NUM_THREADS."""
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    monkeypatch.setattr(cpu_threads, 'available_cpus', lambda: 8)
    monkeypatch.setattr(torch, 'get_num_threads', lambda: 8)


def test_small_models_get_one_thread(machine):
    assert choose_cpu_threads(_Model(1000), load=0.0) == 1


def test_the_teacher_counts_towards_the_size(machine):
    half = SMALL_MODEL_PARAMETERS // 2 + 1
    assert choose_cpu_threads(_Model(half), load=0.0) == 1
    assert choose_cpu_threads(_Model(half, half), load=0.0) == 8


@pytest.mark.parametrize('load,threads', [(0.0, 8), (2.6, 5), (7.9, 1),
                                          (30.0, 1)])
def test_large_models_use_the_idle_cpus(machine, load, threads):
    model = _Model(SMALL_MODEL_PARAMETERS)
    assert choose_cpu_threads(model, load=load) == threads


def test_omp_num_threads_wins(machine, monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '3')
    assert choose_cpu_threads(_Model(1000), load=7.0) == 8  # torch's


def test_hook_arguments():
    from mmpromptkd.engine.hooks import CPUThreadsHook
    for bad in (0, -1, 'all', 1.5):
        with pytest.raises(ValueError, match="'auto' or a positive int"):
            CPUThreadsHook(threads=bad)


def test_hook_sets_the_threads_of_a_cpu_run():
    """In a subprocess: it changes the process's thread count for the
    run, and restores it when the run ends."""
    code = textwrap.dedent('''
        import torch
        from torch import nn
        from mmpromptkd.engine.hooks import CPUThreadsHook

        class Runner:
            model = nn.Linear(2, 2)
            class logger:
                info = staticmethod(print)

        torch.set_num_threads(2)
        hook = CPUThreadsHook(threads='auto')
        hook.before_run(Runner())
        print('threads', torch.get_num_threads())
        hook.after_run(Runner())
        print('after', torch.get_num_threads())
        CPUThreadsHook(threads=2).before_run(Runner())
        print('threads', torch.get_num_threads())
    ''')
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, env=env, check=True).stdout
    assert "CPUThreadsHook: 1 torch thread(s) (threads='auto')" in out
    assert out.split().count('threads') == 2
    assert 'threads 1' in out and 'threads 2' in out
    # The run's end restores the count the process had.
    assert 'after 2' in out
