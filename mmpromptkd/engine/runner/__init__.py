from .resumable_epoch_loop import ResumableEpochBasedTrainLoop
from .safe_loading_runner import SafeLoadingRunner

__all__ = ['ResumableEpochBasedTrainLoop', 'SafeLoadingRunner']
