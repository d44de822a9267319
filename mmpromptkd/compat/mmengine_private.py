"""Private names of mmengine that the package uses, and why.

``EpochBasedTrainLoop._epoch``: a loop overriding ``run_epoch`` must advance
it, and the ``epoch`` property has no setter.
"""
from mmengine.runner import EpochBasedTrainLoop


def finish_epoch(loop: EpochBasedTrainLoop) -> None:
    """Count the epoch that ``loop.run_epoch`` just ran."""
    loop._epoch += 1
