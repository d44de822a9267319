from .dassl_cosine_lr import DasslCosineAnnealingLR

__all__ = ['DasslCosineAnnealingLR']
