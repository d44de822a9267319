"""The seed of the run that builds a dataset: the few-shot draw's default.

A run of seed 2 (``randomness.seed=2``) must train on the shots of seed 2,
not on those of a dataset seed left at its default. The runner that builds
a run's dataloaders (``SafeLoadingRunner.build_dataloader``) makes its seed
current with :func:`using_run_seed`; a dataset given ``seed=None`` takes it
through :func:`resolve_seed`.
"""
import contextlib
import contextvars
from typing import Iterator, Optional

__all__ = ['DEFAULT_SEED', 'resolve_seed', 'using_run_seed']

#: The seed of a dataset built outside a run (the protocol's first seed).
DEFAULT_SEED = 1

_RUN_SEED: contextvars.ContextVar = contextvars.ContextVar(
    'mmpromptkd_run_seed', default=None)


@contextlib.contextmanager
def using_run_seed(seed: Optional[int]) -> Iterator[None]:
    """Make ``seed`` the run's seed for the datasets built inside.

    Args:
        seed (int, optional): The run's seed; None leaves the datasets at
            :data:`DEFAULT_SEED`.

    Yields:
        None: Build the datasets inside.
    """
    token = _RUN_SEED.set(seed)
    try:
        yield
    finally:
        _RUN_SEED.reset(token)


def resolve_seed(seed: Optional[int]) -> int:
    """A dataset's seed: its own if given, else the run's.

    Args:
        seed (int, optional): The seed the dataset was given.

    Returns:
        int: ``seed``; for None, the seed of the run building the dataset
        (:func:`using_run_seed`), or :data:`DEFAULT_SEED` outside a run.
    """
    if seed is not None:
        return seed
    current = _RUN_SEED.get()
    return DEFAULT_SEED if current is None else current
