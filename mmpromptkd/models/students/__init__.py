from .backbone_student import BackboneStudent

__all__ = ['BackboneStudent']
