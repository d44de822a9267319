"""Teacher caches: a teacher's logits recorded once, read by many runs.

One entry records (:func:`record_teacher_cache`, behind
``tools/misc/cache_teacher_logits.py``) and one opens
(:class:`TeacherCachedDataset`, the training set of a run on the cache;
:class:`TeacherLogitCache` is the folder format it reads). A teacher
ensemble is cached as one cache per member, mixed at training time.
"""
from .cached_dataset import TeacherCachedDataset
from .logit_cache import STORAGES, TeacherCacheError, TeacherLogitCache
from .recorder import record_teacher_cache
from .replay import replayable_dataset_config

__all__ = [
    'STORAGES', 'TeacherCacheError', 'TeacherCachedDataset',
    'TeacherLogitCache', 'record_teacher_cache', 'replayable_dataset_config'
]
