"""Read Dassl's few-shot caches (``split_fewshot/shot_K-seed_S.pkl``).

Dassl pickles its few-shot draw as ``{"train": [Datum, ...], "val": [...]}``
where ``Datum`` is ``dassl.data.datasets.base_dataset.Datum`` (attributes
``_impath``, ``_label``, ``_domain``, ``_classname``). A pickle can name any
callable, so the file is never given to a general unpickler: the reader
below resolves exactly one global, Dassl's ``Datum``, to a plain record
class of its own that only accepts that state, and refuses every other
global and persistent id. Nothing is imported or called on behalf of the
file.
"""
import io
import pickle
from typing import Any, Dict, List, NamedTuple, Sequence, Tuple

__all__ = ['DasslDatum', 'dassl_cache_records', 'read_dassl_few_shot_cache']

_DATUM_GLOBAL = ('dassl.data.datasets.base_dataset', 'Datum')
_STATE_TYPES = {
    '_impath': str,
    '_label': int,
    '_domain': int,
    '_classname': str
}


class DasslDatum(NamedTuple):
    """One image of a Dassl few-shot cache, as plain values.

    Attributes:
        impath (str): The image path as Dassl stored it (absolute, on the
            machine that drew it).
        label (int): The label among all classes of the dataset.
        classname (str): The class name.
    """
    impath: str
    label: int
    classname: str


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
        path: str, splits: Sequence[str]) -> Dict[str, List[DasslDatum]]:
    """Read a Dassl few-shot cache into plain records.

    Args:
        path (str): The ``.pkl`` file.
        splits (Sequence[str]): The keys it must hold, e.g.
            ``('train', 'val')`` (ImageNet's holds ``('train',)``).

    Returns:
        dict[str, list[DasslDatum]]: The records of each split, in the
        file's order.

    Raises:
        ValueError: If the file is not a Dassl few-shot cache or names
            anything but Dassl's ``Datum``; the message names the file.
    """
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
    out: Dict[str, List[DasslDatum]] = {}
    for split in splits:
        items = data[split]
        if not isinstance(items, list):
            raise ValueError(f'{path}: "{split}" is a {type(items).__name__};'
                             f' {expected}')
        records = []
        for i, item in enumerate(items):
            if not isinstance(item, _DatumState) or item.state is None:
                raise ValueError(f'{path}: item {i} of "{split}" is not a '
                                 f'Datum with state; {expected}')
            state = item.state
            records.append(
                DasslDatum(state['_impath'], state['_label'],
                           state['_classname']))
        out[split] = records
    return out


def dassl_cache_records(path: str, split: str, splits: Sequence[str],
                        labels: Dict[str, int], class_names: Sequence[str],
                        dataset: str) -> List[Tuple[str, int]]:
    """Map Dassl's cached draw of one split onto a dataset's records.

    Dassl stores absolute paths of the machine that drew the split; each
    is matched to the record whose path relative to the image folder is
    its longest suffix, and its label and class name must agree with the
    split file.

    Args:
        path (str): The Dassl cache file.
        split (str): The split to map ('train' or 'val').
        splits (Sequence[str]): The splits the file must hold.
        labels (dict[str, int]): Label of every image of ``split``, by its
            path relative to the image folder.
        class_names (Sequence[str]): All class names, by label.
        dataset (str): The dataset's name, for messages.

    Returns:
        list[tuple[str, int]]: ``(relative path, label)`` records.

    Raises:
        ValueError: If an item is not an image of the split, or its label
            or class name differ from the split file's.
    """
    cached = read_dassl_few_shot_cache(path, splits)
    records = []
    for i, datum in enumerate(cached[split]):
        parts = datum.impath.replace('\\', '/').split('/')
        relpath = next((r for r in ('/'.join(parts[j:])
                                    for j in range(len(parts)))
                        if r in labels), None)
        if relpath is None:
            raise ValueError(
                f'{path}: item {i} of "{split}" ({datum.impath}) is not an '
                f'image of the {split} split of {dataset}; the cache '
                'belongs to other data')
        label = labels[relpath]
        if (datum.label, datum.classname) != (label, class_names[label]):
            raise ValueError(
                f'{path}: item {i} of "{split}" ({datum.impath}) has label '
                f'{datum.label} {datum.classname!r}, but the split gives '
                f'{label} {class_names[label]!r}; the cache belongs to '
                'other data')
        records.append((relpath, label))
    return records
