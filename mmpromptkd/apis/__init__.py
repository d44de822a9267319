from .exported_student import export_student, load_exported_student

__all__ = ['export_student', 'load_exported_student']
