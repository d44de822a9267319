from .exported_student import (export_student, load_exported_student,
                               preprocessing)
from .student_graph import StudentGraph
from .student_inferencer import StudentInferencer

__all__ = ['export_student', 'load_exported_student', 'preprocessing',
           'StudentGraph', 'StudentInferencer']
