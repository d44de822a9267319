"""Random crop and flip that record their draw and can replay a recorded
view (``docs/teacher_cache.md``)."""
import contextlib
import contextvars
from typing import Iterator, Optional, Tuple

from mmcv.transforms import RandomFlip
from mmpretrain.datasets.transforms import RandomResizedCrop

from mmpromptkd.registry import TRANSFORMS

_VIEW: contextvars.ContextVar = contextvars.ContextVar(
    'mmpromptkd_replayed_view', default=(None, None))


@contextlib.contextmanager
def replay_view(crop: Optional[Tuple[int, int, int, int]],
                flip: Optional[bool]) -> Iterator[None]:
    """Inside the block, the replayable transforms crop ``crop`` and flip
    if ``flip`` instead of drawing (a None part is drawn)."""
    # A sample's pipeline runs synchronously in one process, so a context
    # variable reaches its transforms through any dataset wrappers.
    token = _VIEW.set((crop, flip))
    try:
        yield
    finally:
        _VIEW.reset(token)


@TRANSFORMS.register_module()
class ReplayableRandomResizedCrop(RandomResizedCrop):
    """mmpretrain's ``RandomResizedCrop`` (the same draws) that records its
    box in ``results['view_crop']`` and crops the box of :func:`replay_view`
    instead of drawing."""

    def transform(self, results: dict) -> dict:
        """Crop (a drawn or a replayed box) and resize."""
        crop = _VIEW.get()[0]
        if crop is None:
            crop = tuple(int(v) for v in self.rand_crop_params(results['img']))
        height, width = results['img'].shape[:2]
        top, left, crop_h, crop_w = crop
        if not (0 <= top and 0 <= left and 0 < crop_h
                and top + crop_h <= height and 0 < crop_w
                and left + crop_w <= width):
            raise ValueError(
                f"{results.get('img_path', 'an image')}: the crop {crop} "
                f'(top, left, height, width) to replay does not fit the '
                f'{height}x{width} image: it was recorded on another image')
        self._view = crop
        try:
            super().transform(results)
        finally:
            self._view = None
        results['view_crop'] = crop
        return results

    def rand_crop_params(self, img):
        """The box being replayed inside :meth:`transform`, else a draw."""
        view = getattr(self, '_view', None)
        if view is not None:
            return view
        return super().rand_crop_params(img)


@TRANSFORMS.register_module()
class ReplayableRandomFlip(RandomFlip):
    """mmcv's ``RandomFlip`` of one ``direction`` (the same draws) that
    flips as :func:`replay_view` says instead of drawing."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(self.direction, str):
            raise ValueError(
                'ReplayableRandomFlip records a view as flipped or not: '
                f'give one direction, not {self.direction!r}')
        # Flips a replayed flipped view as this transform would.
        self.always = RandomFlip(prob=1.0, direction=self.direction,
                                 swap_seg_labels=self.swap_seg_labels)

    def transform(self, results: dict) -> dict:
        """Flip (a drawn or a replayed decision)."""
        flip = _VIEW.get()[1]
        if flip is None:
            return super().transform(results)
        if flip:
            return self.always.transform(results)
        results['flip'] = False
        results['flip_direction'] = None
        return results
