from .cpu_threads_hook import CPUThreadsHook
from .empty_class_check_hook import EmptyClassCheckHook, TrainSubsetCheckHook
from .epoch_seed_hook import EpochSeedHook, epoch_seed
from .gaussian_prompt_aggregation_hook import GaussianPromptAggregationHook
from .non_finite_loss_hook import NonFiniteLossHook
from .random_state_hook import RandomStateHook
from .safe_checkpoint_hook import SafeCheckpointHook
from .skipped_images_hook import SkippedImagesHook
from .text_features_hook import PromptKDTextFeaturesHook

__all__ = ['CPUThreadsHook', 'EmptyClassCheckHook', 'EpochSeedHook',
           'GaussianPromptAggregationHook', 'NonFiniteLossHook',
           'RandomStateHook', 'PromptKDTextFeaturesHook', 'SafeCheckpointHook',
           'SkippedImagesHook', 'TrainSubsetCheckHook', 'epoch_seed']
