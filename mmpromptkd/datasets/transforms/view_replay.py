"""The view a replayable transform must produce instead of drawing one.

Also the replayable transforms: mmpretrain's ``RandomResizedCrop`` and
mmcv's ``RandomFlip``, which record their draw and can replay it.
"""
import contextlib
import contextvars
from typing import Iterator, Optional, Tuple

from mmcv.transforms import RandomFlip
from mmpretrain.datasets.transforms import RandomResizedCrop

from mmpromptkd.registry import TRANSFORMS

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


@TRANSFORMS.register_module()
class ReplayableRandomResizedCrop(RandomResizedCrop):
    """``RandomResizedCrop`` whose crop can be recorded and replayed.

    It draws exactly as mmpretrain's transform (the same random numbers,
    so a pipeline gives the same images with either) and writes the crop
    into ``results['view_crop']`` as ``(offset_h, offset_w, target_h,
    target_w)`` in the input image. Inside :func:`replay_view` it crops the
    given box instead of drawing, which reproduces a recorded view pixel
    for pixel. :class:`TeacherCachedDataset` puts it in place of
    ``RandomResizedCrop``.

    Args:
        **kwargs: Arguments of mmpretrain's ``RandomResizedCrop``.
    """

    def transform(self, results: dict) -> dict:
        """Crop (a drawn or a replayed box) and resize.

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: The cropped and resized result, with ``view_crop``.
        """
        crop = replayed_crop()
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
    """``RandomFlip`` of one direction whose draw can be replayed.

    It draws exactly as mmcv's transform and records the outcome in
    ``results['flip']`` (as mmcv does). Inside :func:`replay_view` it flips
    when the recorded view was flipped instead of drawing.
    :class:`TeacherCachedDataset` puts it in place of ``RandomFlip``.

    Args:
        **kwargs: Arguments of mmcv's ``RandomFlip``; ``direction`` must be
            one direction, so that a flag records the view.
    """

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
        """Flip (a drawn or a replayed decision).

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: The result with ``flip`` and ``flip_direction``.
        """
        flip = replayed_flip()
        if flip is None:
            return super().transform(results)
        if flip:
            return self.always.transform(results)
        results['flip'] = False
        results['flip_direction'] = None
        return results
