from .base_novel_accuracy import BaseNovelAccuracy

__all__ = ['BaseNovelAccuracy']
