"""Private names of mmengine that the package uses, and why.

``EpochBasedTrainLoop._epoch``: a loop that overrides ``run_epoch`` (to
resume in the middle of an epoch) must end the epoch as mmengine's own
``run_epoch`` does, by advancing the counter behind the read-only
``epoch`` property; mmengine has no setter for it.
"""
from mmengine.runner import EpochBasedTrainLoop

__all__ = ['finish_epoch']


def finish_epoch(loop: EpochBasedTrainLoop) -> None:
    """Count the epoch that ``loop.run_epoch`` just ran.

    Args:
        loop (EpochBasedTrainLoop): The loop.
    """
    loop._epoch += 1
