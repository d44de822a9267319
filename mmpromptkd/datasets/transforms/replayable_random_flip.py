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
