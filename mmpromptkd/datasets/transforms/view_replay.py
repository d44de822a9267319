"""The view a replayable transform must produce instead of drawing one."""
import contextlib
import contextvars
from typing import Iterator, Optional, Tuple

#: ``(offset_h, offset_w, target_h, target_w)`` of a random resized crop.
CropParams = Tuple[int, int, int, int]

_VIEW: contextvars.ContextVar = contextvars.ContextVar(
    'mmpromptkd_replayed_view', default=None)


@contextlib.contextmanager
def replay_view(crop: Optional[CropParams],
                flip: Optional[bool]) -> Iterator[None]:
    """Make the replayable transforms produce one recorded view.

    Inside the block, :class:`ReplayableRandomResizedCrop` crops ``crop``
    and :class:`ReplayableRandomFlip` flips when ``flip`` is True, instead
    of drawing; a None part is drawn as usual. The data pipeline of one
    sample runs synchronously in one process (a dataloader worker), so a
    context variable carries the view to the transforms of that sample,
    whatever dataset wrappers lie between.

    Args:
        crop (tuple[int, int, int, int], optional): Crop parameters.
        flip (bool, optional): Whether the view is flipped.
    """
    token = _VIEW.set((crop, flip))
    try:
        yield
    finally:
        _VIEW.reset(token)


def replayed_crop() -> Optional[CropParams]:
    """The crop to replay, or None to draw one."""
    view = _VIEW.get()
    return None if view is None else view[0]


def replayed_flip() -> Optional[bool]:
    """Whether to flip in the view being replayed, or None to draw."""
    view = _VIEW.get()
    return None if view is None else view[1]
