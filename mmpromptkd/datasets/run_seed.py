"""The seed of the run that builds a dataset: the few-shot draw's default
(``SafeLoadingRunner.build_dataloader`` sets it with :func:`using_run_seed`).
"""
import contextlib
import contextvars
from typing import Iterator, Optional

#: The seed of a dataset built outside a run (the protocol's first seed).
DEFAULT_SEED = 1

_RUN_SEED: contextvars.ContextVar = contextvars.ContextVar(
    'mmpromptkd_run_seed', default=DEFAULT_SEED)


@contextlib.contextmanager
def using_run_seed(seed: Optional[int]) -> Iterator[None]:
    """Make ``seed`` (None: :data:`DEFAULT_SEED`) the run's seed for the
    datasets built inside."""
    token = _RUN_SEED.set(DEFAULT_SEED if seed is None else seed)
    try:
        yield
    finally:
        _RUN_SEED.reset(token)


def resolve_seed(seed: Optional[int]) -> int:
    """A dataset's seed: its own if given, else the run's, else
    :data:`DEFAULT_SEED`."""
    return _RUN_SEED.get() if seed is None else seed
