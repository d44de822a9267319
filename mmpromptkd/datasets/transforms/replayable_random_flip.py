"""mmcv's RandomFlip that can replay whether an image was flipped."""
from mmcv.transforms import RandomFlip

from mmpromptkd.registry import TRANSFORMS
from .view_replay import replayed_flip


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
        results['flip'] = bool(flip)
        results['flip_direction'] = self.direction if flip else None
        if flip:
            self._flip(results)
        return results
