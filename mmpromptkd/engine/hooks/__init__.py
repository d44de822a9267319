from .text_features_hook import PromptKDTextFeaturesHook

__all__ = ['PromptKDTextFeaturesHook']
