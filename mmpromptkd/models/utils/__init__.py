from .predictions import logits_to_data_samples

__all__ = ['logits_to_data_samples']
