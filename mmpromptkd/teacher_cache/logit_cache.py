"""Teacher logits and views recorded once, read by many student runs."""
import json
import math
import os
import os.path as osp
import shutil
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmpromptkd.fileio import dead_temporaries, temporary_path
from .fingerprints import array_fingerprints, check_regular_file

FORMAT = 'mmpromptkd-teacher-logit-cache'
#: 2: arrays and images carry fingerprints (version 1 had none).
VERSION = 2
STORAGES = ('float32', 'float16', 'topk')
META_FILE = 'meta.json'
_ARRAYS = ('crops', 'flips', 'text_features')
_LOGIT_ARRAYS = dict(float32=('logits', ), float16=('logits', ),
                     topk=('topk_values', 'topk_indices', 'rest_logit'))


class TeacherCacheError(ValueError):
    """A teacher cache is missing, incomplete, corrupted or does not fit."""


class TeacherLogitCache:
    """A folder of teacher logits for recorded views of every image.

    ``meta.json`` and NumPy arrays (read with ``allow_pickle=False``,
    memory-mapped; crops are -1 where none was drawn); ``meta.json`` binds
    the cache to its classes, images, pipeline, seed, temperature, teacher
    and arrays, all checked by :meth:`open` (``docs/teacher_cache.md``).

    Args:
        path (str): The cache folder.
        meta (dict): Its ``meta.json``.
        arrays (dict[str, np.ndarray]): Its arrays by name.
    """

    def __init__(self, path: str, meta: Dict[str, Any],
                 arrays: Dict[str, np.ndarray]) -> None:
        self.path = path
        self.meta = meta
        self.arrays = arrays
        self._final_path: Optional[str] = None

    @property
    def num_views(self) -> int:
        """int: Views per image (recorded epochs)."""
        return self.meta['num_views']

    @property
    def num_samples(self) -> int:
        """int: Images."""
        return self.meta['num_samples']

    @property
    def class_names(self) -> Tuple[str, ...]:
        """tuple[str]: Class names, in label order."""
        return tuple(self.meta['class_names'])

    @property
    def storage(self) -> str:
        """str: 'float32', 'float16' or 'topk'."""
        return self.meta['storage']

    @property
    def text_features(self) -> np.ndarray:
        """np.ndarray: The teacher's text features (C, D)."""
        return self.arrays['text_features']

    @classmethod
    def create(cls,
               path: str,
               num_views: int,
               num_samples: int,
               class_names: Sequence[str],
               text_features: np.ndarray,
               storage: str = 'float16',
               topk: Optional[int] = None,
               tau: float = 1.0,
               **meta: Any) -> 'TeacherLogitCache':
        """Start writing a cache in a temporary folder; :meth:`commit`
        makes it appear at ``path``.

        Args:
            path (str): The folder to create; must not exist.
            num_views (int): Views per image.
            num_samples (int): Images.
            class_names (Sequence[str]): Class names.
            text_features (np.ndarray): The teacher's text features (C, D).
            storage (str): 'float32', 'float16' or 'topk'.
            topk (int, optional): Logits kept per view with 'topk'.
            tau (float): The distillation temperature.
            **meta: More JSON fields of ``meta.json``.
        """
        path = osp.abspath(path)
        if osp.lexists(path):
            raise FileExistsError(
                f'{path} exists: a teacher cache is never overwritten; '
                'remove it or choose another folder')
        if storage not in STORAGES:
            raise ValueError(f'storage must be one of {STORAGES}, got '
                             f'{storage!r}')
        num_classes = len(class_names)
        if storage == 'topk':
            if not isinstance(topk, int) or not 0 < topk < num_classes:
                raise ValueError(f'storage="topk" needs 0 < topk < '
                                 f'{num_classes} (the classes), got {topk!r}')
        elif topk is not None:
            raise ValueError(f'topk is only used with storage="topk", not '
                             f'{storage!r}')
        text_features = np.asarray(text_features, dtype=np.float32)
        if text_features.shape[0] != num_classes:
            raise ValueError(f'{text_features.shape[0]} text features for '
                             f'{num_classes} classes')
        # Recordings of this cache whose process was killed.
        for leftover in dead_temporaries(
                osp.dirname(path), of=osp.basename(path)):
            if osp.isdir(leftover):
                shutil.rmtree(leftover)
        tmp = temporary_path(path)
        if osp.lexists(tmp):
            shutil.rmtree(tmp)
        os.makedirs(tmp)
        full = dict(meta, format=FORMAT, version=VERSION, num_views=num_views,
                    num_samples=num_samples, num_classes=num_classes,
                    class_names=list(class_names), storage=storage,
                    topk=topk, tau=float(tau))
        arrays = {
            name: np.lib.format.open_memmap(
                osp.join(tmp, f'{name}.npy'), 'w+', dtype, shape)
            for name, (shape, dtype) in _logit_shapes(full).items()
        }
        arrays['crops'][:] = -1
        np.save(osp.join(tmp, 'text_features.npy'), text_features)
        arrays['text_features'] = text_features
        cache = cls(tmp, full, arrays)
        cache._final_path = path
        cache._written = np.zeros((num_views, num_samples), dtype=bool)
        return cache

    def put(self, view: int, indices: Sequence[int],
            crops: Sequence[Optional[Sequence[int]]],
            flips: Sequence[Optional[bool]], logits: np.ndarray) -> None:
        """Store the views (crop or None, flip) and teacher logits (B, C)
        of the samples ``indices`` in view (epoch) ``view``."""
        if self._final_path is None:
            raise RuntimeError(f'{self.path} was opened for reading')
        logits = np.asarray(logits, dtype=np.float64)
        logits = logits - logits.max(axis=1, keepdims=True)
        for index, crop, flip in zip(indices, crops, flips):
            if self._written[view, index]:
                raise ValueError(f'sample {index} appears twice in view '
                                 f'{view}: a view is one pass over the data')
            self._written[view, index] = True
            if crop is not None:
                self.arrays['crops'][view, index] = crop
            self.arrays['flips'][view, index] = bool(flip)
        indices = np.asarray(indices)
        if self.storage != 'topk':
            self.arrays['logits'][view, indices] = logits
            return
        k, tau = self.meta['topk'], self.meta['tau']
        top = np.argsort(-logits, axis=1, kind='stable')[:, :k]
        values = np.take_along_axis(logits, top, axis=1)
        rest = np.ones_like(logits, dtype=bool)
        np.put_along_axis(rest, top, False, axis=1)
        # (C - k) * exp(c / tau) = sum over the rest of exp(z / tau).
        scaled = np.where(rest, logits / tau, -np.inf)
        log_mass = np.logaddexp.reduce(scaled, axis=1)
        rest_logit = tau * (log_mass - math.log(logits.shape[1] - k))
        self.arrays['topk_values'][view, indices] = values
        self.arrays['topk_indices'][view, indices] = top
        self.arrays['rest_logit'][view, indices] = rest_logit

    def commit(self) -> 'TeacherLogitCache':
        """Check that every view is complete, rename into place, reopen."""
        missing = np.argwhere(~self._written)
        if len(missing):
            view, index = missing[0]
            raise TeacherCacheError(
                f'{len(missing)} view(s) were never recorded (first: sample '
                f'{index} of view {view}); the cache is not written')
        for array in self.arrays.values():
            if isinstance(array, np.memmap):
                array.flush()
        self.meta['arrays'] = array_fingerprints(self.path, self.arrays)
        with open(osp.join(self.path, META_FILE), 'w') as f:
            json.dump(self.meta, f, indent=1)
        os.replace(self.path, self._final_path)
        return self.open(self._final_path)

    def discard(self) -> None:
        """Remove the temporary folder of a cache that is not committed."""
        if self._final_path is not None and osp.isdir(self.path):
            shutil.rmtree(self.path)

    @classmethod
    def open(cls, path: str) -> 'TeacherLogitCache':
        """Open a cache folder for reading; TeacherCacheError unless it is
        a complete, unchanged cache."""
        path = osp.abspath(path)
        meta_file = osp.join(path, META_FILE)
        _regular_or_refused(meta_file)
        if not osp.isfile(meta_file):
            raise TeacherCacheError(
                f'{path} is not a teacher cache (no {META_FILE}); record one '
                'with tools/misc/cache_teacher_logits.py')
        try:
            with open(meta_file) as f:
                meta = json.load(f)
        except (OSError, ValueError) as e:
            raise TeacherCacheError(f'{meta_file}: not readable JSON ({e})')
        if not isinstance(meta, dict) or meta.get('format') != FORMAT:
            raise TeacherCacheError(f'{meta_file}: not a teacher cache')
        if meta.get('version') != VERSION:
            raise TeacherCacheError(
                f'{meta_file}: version {meta.get("version")!r}, this '
                f'mmpromptkd reads version {VERSION} (version 1 caches carry '
                'no fingerprints of their images and arrays: record the '
                'cache again)')
        storage = meta.get('storage')
        if storage not in STORAGES:
            raise TeacherCacheError(f'{meta_file}: storage {storage!r} is '
                                    f'not one of {STORAGES}')
        arrays = {}
        for name in _ARRAYS + _LOGIT_ARRAYS[storage]:
            file = osp.join(path, f'{name}.npy')
            _regular_or_refused(file)
            try:
                arrays[name] = np.load(file, mmap_mode='r', allow_pickle=False)
            except (OSError, ValueError) as e:
                raise TeacherCacheError(f'{file}: not a readable array ({e})')
        cache = cls(path, meta, arrays)
        cache._check()
        return cache

    def _check(self) -> None:
        meta = self.meta
        for key in ('num_views', 'num_samples', 'num_classes'):
            if not isinstance(meta.get(key), int) or meta[key] <= 0:
                raise TeacherCacheError(
                    f'{self.path}: meta {key}={meta.get(key)!r} is not a '
                    'positive integer')
        if len(meta.get('class_names') or []) != meta['num_classes']:
            raise TeacherCacheError(f'{self.path}: meta class_names does not '
                                    f'list {meta["num_classes"]} classes')
        if self.arrays['text_features'].ndim != 2:
            raise TeacherCacheError(f'{self.path}: text_features.npy is not '
                                    'a (classes, dim) array')
        expected = dict(_logit_shapes(meta), text_features=(
            (meta['num_classes'], self.arrays['text_features'].shape[-1]),
            np.float32))
        for name, (shape, dtype) in expected.items():
            array = self.arrays[name]
            if array.shape != shape or array.dtype != dtype:
                raise TeacherCacheError(
                    f'{self.path}/{name}.npy: {array.dtype} {array.shape}, '
                    f'expected {np.dtype(dtype)} {shape}: the cache is '
                    'incomplete or corrupted')
        for name in ('logits', 'topk_values', 'rest_logit',
                     'text_features'):
            flat = self.arrays.get(name, np.zeros(0)).reshape(-1)
            # In chunks: the arrays are memory-mapped.
            if not all(np.isfinite(flat[i:i + (1 << 24)]).all()
                       for i in range(0, flat.size, 1 << 24)):
                raise TeacherCacheError(
                    f'{self.path}/{name}.npy holds NaN or infinite values: '
                    'the cache is corrupted')
        if self.storage == 'topk':
            indices = self.arrays['topk_indices']
            if indices.size and (indices.min() < 0 or
                                 indices.max() >= meta['num_classes']):
                raise TeacherCacheError(
                    f'{self.path}/topk_indices.npy holds class indices '
                    f'outside 0..{meta["num_classes"] - 1}')
            for view in range(meta['num_views']):
                ordered = np.sort(indices[view], axis=-1)
                repeated = np.argwhere(
                    (ordered[:, 1:] == ordered[:, :-1]).any(axis=-1))
                if len(repeated):
                    raise TeacherCacheError(
                        f'{self.path}/topk_indices.npy: view {view} of '
                        f'sample {int(repeated[0][0])} names one class '
                        'twice; top-k classes are distinct')
        recorded = self.meta.get('arrays')
        if not isinstance(recorded, dict) or \
                set(recorded) != set(self.arrays):
            raise TeacherCacheError(
                f'{self.path}/{META_FILE}: "arrays" must give the '
                f'fingerprint of each of {sorted(self.arrays)}')
        found = array_fingerprints(self.path, self.arrays)
        for name in sorted(found):
            if found[name] != recorded[name]:
                raise TeacherCacheError(
                    f'{self.path}/{name}.npy is not the array this cache '
                    f'recorded (fingerprint {found[name]}, recorded '
                    f'{recorded[name]}): copied from another cache or '
                    'changed after recording')

    def view(self, view: int,
             index: int) -> Tuple[Optional[tuple], bool, np.ndarray]:
        """``(crop or None, flip, dense logits (C,) float32)`` of a view."""
        crop = tuple(int(v) for v in self.arrays['crops'][view, index])
        crop = None if crop[0] < 0 else crop
        flip = bool(self.arrays['flips'][view, index])
        if self.storage != 'topk':
            # A copy: the memory-mapped array is read-only.
            logits = np.array(
                self.arrays['logits'][view, index], dtype=np.float32)
        else:
            logits = np.full(self.meta['num_classes'],
                             self.arrays['rest_logit'][view, index],
                             dtype=np.float32)
            logits[self.arrays['topk_indices'][view, index]] = \
                self.arrays['topk_values'][view, index]
        return crop, flip, logits

    def size_bytes(self) -> int:
        """int: Bytes of the arrays on disk."""
        return sum(
            osp.getsize(osp.join(self.path, f'{name}.npy'))
            for name in self.arrays)


def _logit_shapes(meta: Dict[str, Any]) -> Dict[str, Tuple[tuple, Any]]:
    """Shape and dtype of each array but the text features, by name."""
    v, n, c = meta['num_views'], meta['num_samples'], meta['num_classes']
    shapes = {'crops': ((v, n, 4), np.int32), 'flips': ((v, n), np.uint8)}
    if meta['storage'] == 'topk':
        k = meta['topk']
        shapes['topk_values'] = ((v, n, k), np.float32)
        shapes['topk_indices'] = ((v, n, k), np.int32)
        shapes['rest_logit'] = ((v, n), np.float32)
    else:
        shapes['logits'] = ((v, n, c), np.dtype(meta['storage']))
    return shapes


def _regular_or_refused(path: str) -> None:
    """Refuse a non-regular file (a named pipe would block for ever)."""
    try:
        check_regular_file(path)
    except ValueError as e:
        raise TeacherCacheError(f'{e}: a teacher cache holds regular files '
                                'only') from None


def sample_paths(dataset) -> List[str]:
    """Each sample's ``img_path`` (else its index) relative to the folder
    they all lie in, so that a moved dataset is still the recorded one."""
    paths = [
        str(dataset.get_data_info(i).get('img_path', i))
        for i in range(len(dataset))
    ]
    if not paths:
        return []
    root = osp.commonpath([osp.dirname(osp.abspath(p)) for p in paths])
    return [osp.relpath(osp.abspath(p), root) for p in paths]
