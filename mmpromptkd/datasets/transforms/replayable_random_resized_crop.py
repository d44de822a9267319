"""mmpretrain's RandomResizedCrop that records and can replay its crop."""
from mmpretrain.datasets.transforms import RandomResizedCrop

from mmpromptkd.registry import TRANSFORMS
from .view_replay import replayed_crop


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
