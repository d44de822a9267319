from .official_promptkd import (convert_official_student,
                                convert_official_teacher)

__all__ = ['convert_official_student', 'convert_official_teacher']
