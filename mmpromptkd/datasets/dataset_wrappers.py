"""Seeing through dataset wrappers (RepeatDataset, ConcatDataset, ...)."""
from typing import Any, Iterator


def _wrapped(dataset: Any) -> list:
    # Instance attributes only, as the wrappers set them: a stand-in that
    # makes up every attribute asked for (a MagicMock, as in mmpretrain's
    # vis_scheduler.py) wraps nothing.
    attributes = getattr(dataset, '__dict__', {})
    inner = [attributes.get('dataset')]
    inner += list(attributes.get('datasets') or [])
    return [d for d in inner if d is not None]


def iter_wrapped_datasets(dataset: Any) -> Iterator[Any]:
    """A dataset and every dataset it wraps (in ``dataset`` or
    ``datasets``, as mmengine's wrappers keep them), breadth first, once."""
    pending, seen = [dataset], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(_wrapped(current))


def unwrap_dataset(dataset: Any) -> Any:
    """The first dataset inside the wrappers (``dataset`` if none)."""
    return next(d for d in iter_wrapped_datasets(dataset) if not _wrapped(d))
