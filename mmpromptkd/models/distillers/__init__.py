from .promptkd_distiller import PromptKDDistiller

__all__ = ['PromptKDDistiller']
