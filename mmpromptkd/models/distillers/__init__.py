from .promptkd_distiller import PromptKDDistiller
from .teacher_ensemble import TeacherEnsemble

__all__ = ['PromptKDDistiller', 'TeacherEnsemble']
