from .projector import FeatureProjector

__all__ = ['FeatureProjector']
