from .gaussian_prompt_aggregation_hook import GaussianPromptAggregationHook
from .non_finite_loss_hook import NonFiniteLossHook
from .text_features_hook import PromptKDTextFeaturesHook
from .train_subset_check_hook import TrainSubsetCheckHook

__all__ = [
    'GaussianPromptAggregationHook', 'NonFiniteLossHook',
    'PromptKDTextFeaturesHook', 'TrainSubsetCheckHook'
]
