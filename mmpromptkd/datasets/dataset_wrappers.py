"""Seeing through dataset wrappers (RepeatDataset, ConcatDataset, ...)."""
from typing import Any, Iterator

__all__ = ['iter_wrapped_datasets', 'unwrap_dataset']


def _wrapped(dataset: Any) -> list:
    # Instance attributes only, as the wrappers set them: a stand-in that
    # makes up every attribute asked for (a MagicMock, as in mmpretrain's
    # vis_scheduler.py) wraps nothing.
    attributes = getattr(dataset, '__dict__', {})
    inner = [attributes.get('dataset')]
    inner += list(attributes.get('datasets') or [])
    return [d for d in inner if d is not None]


def iter_wrapped_datasets(dataset: Any) -> Iterator[Any]:
    """A dataset and every dataset it wraps, breadth first, each once.

    mmengine's wrappers keep what they wrap in ``dataset``
    (``RepeatDataset``, ``ClassBalancedDataset``) or ``datasets``
    (``ConcatDataset``).

    Args:
        dataset (Any): A dataset, wrapped or not.

    Yields:
        Any: ``dataset`` first, then the datasets inside it.
    """
    pending, seen = [dataset], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(_wrapped(current))


def unwrap_dataset(dataset: Any) -> Any:
    """The first dataset inside the wrappers (``dataset`` if none).

    Args:
        dataset (Any): A dataset, wrapped or not.

    Returns:
        Any: The first dataset of :func:`iter_wrapped_datasets` that wraps
        nothing.
    """
    return next(d for d in iter_wrapped_datasets(dataset) if not _wrapped(d))
