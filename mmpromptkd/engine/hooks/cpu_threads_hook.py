"""Set the torch threads of a CPU run."""
from typing import Union

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmpromptkd.registry import HOOKS
from mmpromptkd.utils import choose_cpu_threads


@HOOKS.register_module()
class CPUThreadsHook(Hook):
    """Choose the intra-op threads of torch for a run on the CPU (restored
    when it ends; runs on an accelerator are left alone).

    Args:
        threads (int | str): A thread count or 'auto'
            (:func:`~mmpromptkd.utils.choose_cpu_threads`).
    """

    priority = 'VERY_HIGH'

    def __init__(self, threads: Union[int, str] = 'auto') -> None:
        if threads != 'auto' and not (isinstance(threads, int)
                                      and threads > 0):
            raise ValueError(f"threads must be 'auto' or a positive int, "
                             f'got {threads!r}')
        self.threads = threads
        self._process_threads = None

    def before_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        param = next(model.parameters(), None)
        if param is not None and param.device.type != 'cpu':
            return
        threads = (choose_cpu_threads(model)
                   if self.threads == 'auto' else self.threads)
        self._process_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
        runner.logger.info(f'CPUThreadsHook: {threads} torch thread(s) '
                           f'(threads={self.threads!r})')

    def after_run(self, runner) -> None:
        if self._process_threads is not None:
            torch.set_num_threads(self._process_threads)
            self._process_threads = None
