"""Teacher caches: a teacher's logits recorded once, read by many runs
(``docs/teacher_cache.md``)."""
from .cached_dataset import TeacherCachedDataset
from .logit_cache import STORAGES, TeacherCacheError, TeacherLogitCache
from .recorder import record_teacher_cache
from .replay import replayable_dataset_config

__all__ = [
    'STORAGES', 'TeacherCacheError', 'TeacherCachedDataset',
    'TeacherLogitCache', 'record_teacher_cache', 'replayable_dataset_config'
]
