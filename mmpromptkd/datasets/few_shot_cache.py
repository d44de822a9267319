"""Few-shot cache files: ours (JSON, written) and Dassl's (pickle, read
with an unpickler that turns Dassl's ``Datum`` into checked plain state and
refuses any other global: nothing is imported or called)."""
import collections
import io
import json
import pickle
from typing import Any, Dict, List, Sequence, Tuple

from mmengine.logging import print_log

from mmpromptkd.fileio import atomic_write

_DATUM_GLOBAL = ('dassl.data.datasets.base_dataset', 'Datum')
_STATE_TYPES = {
    '_impath': str,
    '_label': int,
    '_domain': int,
    '_classname': str
}


def write_few_shot_cache(path: str, drawn: Dict[str, List[Tuple[str, int]]],
                         class_names: Sequence[str], dataset: str) -> bool:
    """Write the records by split atomically; True if the file existed
    already (it is never replaced)."""
    payload = {
        split: [[relpath, label, class_names[label]]
                for relpath, label in records]
        for split, records in drawn.items()
    }
    try:
        atomic_write(json.dumps(payload), path, exclusive=True)
    except FileExistsError:
        return True
    except OSError as e:
        print_log(
            f'{dataset}: not caching the few-shot split, could not write '
            f'{path} ({e})',
            logger='current')
    return False


def check_few_shot_draw(drawn: List[Tuple[str, int]], *,
                        split_records: List[Tuple[str, int]], shots: int,
                        class_names: Sequence[str],
                        source: str) -> List[Tuple[str, int]]:
    """Return a cached draw after checking it is a ``shots`` draw of
    ``split_records`` (``source`` names the cache in errors)."""
    labels = dict(split_records)
    seen = set()
    again = 'the cache belongs to other data; delete it to draw again'
    for i, (relpath, label) in enumerate(drawn):
        if relpath not in labels:
            raise ValueError(f'{source}: item {i} ({relpath}) is not an '
                             f'image of the split; {again}')
        if labels[relpath] != label:
            raise ValueError(f'{source}: item {i} ({relpath}) has label '
                             f'{label}, the split {labels[relpath]}; {again}')
        if relpath in seen:
            raise ValueError(f'{source}: item {i} ({relpath}) is listed '
                             f'twice; {again}')
        seen.add(relpath)
    counts = collections.Counter(label for _, label in drawn)
    available = collections.Counter(label for _, label in split_records)
    for label in sorted(available):
        expected = min(shots, available[label])
        if counts[label] != expected:
            raise ValueError(
                f'{source}: class {label} ({class_names[label]!r}) has '
                f'{counts[label]} images, a draw of {shots} shots has '
                f'{expected}; {again}')
    return drawn


class _DatumState:
    """What a pickled ``Datum`` becomes: a holder of its checked state."""

    # Pickle makes it with ``__new__`` (NEWOBJ) or a call without arguments
    # (REDUCE); either way the state comes only through ``__setstate__``.
    state: Any = None

    def __setstate__(self, state: Any) -> None:
        if self.state is not None:
            raise pickle.UnpicklingError('a Datum was given state twice')
        if not (isinstance(state, dict) and set(state) == set(_STATE_TYPES)
                and all(
                    type(state[k]) is t for k, t in _STATE_TYPES.items())):
            raise pickle.UnpicklingError(
                f'a Datum has state {state!r:.200}; expected a dict of '
                f'{ {k: t.__name__ for k, t in _STATE_TYPES.items()} }')
        self.state = state


class _CacheUnpickler(pickle.Unpickler):
    """Resolves Dassl's ``Datum`` to :class:`_DatumState`, nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == _DATUM_GLOBAL:
            return _DatumState
        raise pickle.UnpicklingError(
            f'refusing global {module}.{name}: a Dassl few-shot cache holds '
            f'only {".".join(_DATUM_GLOBAL)} records')

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(
            'refusing a persistent id: a Dassl few-shot cache has none')


def read_dassl_few_shot_cache(
        path: str,
        splits: Sequence[str]) -> Dict[str, List[Tuple[str, int, str]]]:
    """The ``(impath, label, classname)`` records of each of ``splits`` in
    a Dassl few-shot cache (``split_fewshot/shot_K-seed_S.pkl``)."""
    with open(path, 'rb') as f:
        payload = f.read()
    try:
        data = _CacheUnpickler(io.BytesIO(payload)).load()
    except Exception as e:  # any malformed pickle, named with the file
        raise ValueError(f'{path} is not a Dassl few-shot cache: {e}') from e
    expected = (f'expected {{{", ".join(repr(s) for s in splits)}: '
                '[dassl Datum, ...]}} as Dassl writes it')
    if not isinstance(data, dict) or not set(splits) <= set(data):
        keys = sorted(map(str, data)) if isinstance(data, dict) else None
        raise ValueError(f'{path}: top level is {type(data).__name__} with '
                         f'keys {keys}; {expected}')
    out = {}
    for split in splits:
        items = data[split]
        if not isinstance(items, list):
            raise ValueError(f'{path}: "{split}" is a {type(items).__name__};'
                             f' {expected}')
        for i, item in enumerate(items):
            if not isinstance(item, _DatumState) or item.state is None:
                raise ValueError(f'{path}: item {i} of "{split}" is not a '
                                 f'Datum with state; {expected}')
        out[split] = [(d.state['_impath'], d.state['_label'],
                       d.state['_classname']) for d in items]
    return out


def dassl_cache_records(path: str, split: str, splits: Sequence[str],
                        labels: Dict[str, int], class_names: Sequence[str],
                        dataset: str) -> List[Tuple[str, int]]:
    """Dassl's cached draw of ``split`` as ``(relpath, label)`` records:
    each absolute path is matched to the relative path of ``labels`` that
    is its longest suffix, with the split file's label and class name."""
    records = []
    for i, (impath, label, classname) in enumerate(
            read_dassl_few_shot_cache(path, splits)[split]):
        parts = impath.replace('\\', '/').split('/')
        relpath = next((r for r in ('/'.join(parts[j:])
                                    for j in range(len(parts)))
                        if r in labels), None)
        at = f'{path}: item {i} of "{split}" ({impath})'
        if relpath is None:
            raise ValueError(
                f'{at} is not an image of the {split} split of {dataset}; '
                'the cache belongs to other data')
        expected = (labels[relpath], class_names[labels[relpath]])
        if (label, classname) != expected:
            raise ValueError(
                f'{at} has label {label} {classname!r}, but the split gives '
                f'{expected[0]} {expected[1]!r}; the cache belongs to other '
                'data')
        records.append((relpath, expected[0]))
    return records
