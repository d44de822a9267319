from .base_novel_accuracy import BaseNovelAccuracy
from .teacher_student_agreement import TeacherStudentAgreement

__all__ = ['BaseNovelAccuracy', 'TeacherStudentAgreement']
