"""Base class of the CoOp-format datasets."""
import json
import math
import os.path as osp
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from mmpretrain.datasets import BaseDataset

from mmpromptkd.registry import DATASETS
from .class_names import distinct_class_names
from .few_shot_cache import (check_few_shot_draw, dassl_cache_records,
                             write_few_shot_cache)
from .run_seed import resolve_seed
from .utils import (DOCS_HINT, Record, build_pipeline, is_int,
                    join_nonempty, sample_few_shot, sample_few_shot_dassl)

SUBSETS = ('all', 'base', 'novel')
FEW_SHOT_SAMPLERS = ('mmpromptkd', 'dassl')
SPLIT_LAYOUT = ('expected {"train": [[relpath, label, classname], ...], '
                f'"val": [...], "test": [...]}} ({DOCS_HINT})')


def _load_json(path: str, remedy: str) -> Any:
    """Decode a JSON file; a syntax error names the place and ``remedy``."""
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(
            f'{path} is not valid JSON: {e.msg} at line {e.lineno}, '
            f'column {e.colno} (char {e.pos}); {remedy}') from e


@DATASETS.register_module()
class CoOpDataset(BaseDataset):
    """A CoOp-format dataset with base/novel subsets and few-shot draws.

    Samples are ``dict(img_path, gt_label)``; ``metainfo`` holds
    ``classes``, ``subset`` and ``num_base_classes``. Layout, split file,
    subsets and the few-shot cache: ``docs/datasets.md``.

    Args:
        data_root (str): The folder holding every dataset folder.
        split (str, optional): 'train', 'val', 'test'; None: the first.
        subset (str): 'all', 'base' or 'novel'.
        num_shots (int): Train images per class (val: <= 4); < 1: all.
        seed (int, optional): Seed of the few-shot draw; None: the run's.
        few_shot_sampler (str): 'mmpromptkd' or 'dassl' (the official).
        num_base_classes (int, optional): Base classes; None: ``ceil(n/2)``.
        pipeline (Sequence[dict | Callable]): Transforms.
        cache_few_shot (bool): Read and write the few-shot cache file.
        dataset_dir (str, optional): Overrides the class's folder.
        image_dir (str, optional): Overrides the class's image folder.
        split_file (str, optional): Overrides the class's split file.
        **kwargs: Options of mmengine's ``BaseDataset``.
    """

    dataset_dir: str = ''
    image_dir: str = ''
    split_file: Optional[str] = None
    splits: Tuple[str, ...] = ('train', 'val', 'test')
    few_shot_splits: Tuple[str, ...] = ('train', 'val')
    max_val_shots: int = 4

    def __init__(self,
                 data_root: str,
                 split: Optional[str] = None,
                 subset: str = 'all',
                 num_shots: int = -1,
                 seed: Optional[int] = None,
                 few_shot_sampler: str = 'mmpromptkd',
                 num_base_classes: Optional[int] = None,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 cache_few_shot: bool = True,
                 dataset_dir: Optional[str] = None,
                 image_dir: Optional[str] = None,
                 split_file: Optional[str] = None,
                 **kwargs) -> None:
        name = type(self).__name__
        for key, value in (('dataset_dir', dataset_dir),
                           ('image_dir', image_dir),
                           ('split_file', split_file)):
            if value is not None:
                setattr(self, key, value)
        split = self.splits[0] if split is None else split
        if split not in self.splits:
            if self.splits == ('test', ):
                raise ValueError(f"{name} is test-only: split must be 'test', "
                                 f'got {split!r}')
            raise ValueError(f'{name}: split must be one of {self.splits}, '
                             f'got {split!r}')
        if subset not in SUBSETS:
            raise ValueError(f'{name}: subset must be one of {SUBSETS}, '
                             f'got {subset!r}')
        if not is_int(num_shots):
            raise TypeError(f'{name}: num_shots must be an int, '
                            f'got {num_shots!r}')
        if seed is not None and not is_int(seed):
            raise TypeError(f'{name}: seed must be an int or None (the '
                            f"run's seed), got {seed!r}")
        if few_shot_sampler not in FEW_SHOT_SAMPLERS:
            raise ValueError(f'{name}: few_shot_sampler must be one of '
                             f'{FEW_SHOT_SAMPLERS}, got {few_shot_sampler!r}')

        self.split = split
        self.subset = subset
        self.num_shots = num_shots
        self.seed = resolve_seed(seed)
        self.few_shot_sampler = few_shot_sampler
        self.cache_few_shot = cache_few_shot
        self._root = osp.expanduser(data_root)
        self._dataset_root = join_nonempty(self._root, self.dataset_dir)
        self._image_root = join_nonempty(self._dataset_root, self.image_dir)
        # The parsed split file, kept until ``full_init`` so that it is read
        # once, then dropped: the sample list is serialised for the workers.
        self._parsed: Any = None

        self._check_layout()
        self._all_classes = list(distinct_class_names(
            self._load_classnames(), self._ann_file()))
        super().__init__(
            ann_file=self._ann_file(),
            metainfo=self._subset_metainfo(num_base_classes),
            data_root=self._root,
            data_prefix=dict(
                img_path=join_nonempty(self.dataset_dir, self.image_dir)),
            pipeline=build_pipeline(pipeline),
            **kwargs)
        # Set after construction: mmengine would read a string metainfo
        # value as a file name.
        self._metainfo['subset'] = subset

    # Layout hooks, overridden by datasets without a JSON split file.
    @property
    def split_path(self) -> str:
        """str: Path of the JSON split file."""
        if not self.split_file:
            raise ValueError(f'{type(self).__name__}: no split_file is set; '
                             'pass split_file=... or use a dataset class')
        return join_nonempty(self._dataset_root, self.split_file)

    def _ann_file(self) -> str:
        """The annotation file relative to ``data_root`` (for ``repr``)."""
        return join_nonempty(self.dataset_dir, self.split_file or '')

    def _required_paths(self) -> List[str]:
        """Paths that must exist for the requested split."""
        return [self._image_root, self.split_path]

    def _load_classnames(self) -> List[str]:
        """Every class name of the dataset, in label order."""
        return self._parse_split_file()[0]

    def _load_records(self, split: str) -> List[Record]:
        """The ``(relpath, label among all classes)`` records of a split."""
        return self._parse_split_file()[1][split]

    def _per_class_metainfo(self) -> Dict[str, List[Any]]:
        """Extra per-class metainfo lists, subset along with the classes."""
        return {}

    def _check_layout(self) -> None:
        """Check the folders and annotation files (never the images)."""
        paths = self._required_paths()
        hint = f'expected {", ".join(paths)} ({DOCS_HINT})'
        name = type(self).__name__
        if not osp.isdir(self._root):
            raise FileNotFoundError(
                f'{name}: data_root {self._root} is not a folder; {hint}')
        if self._dataset_root != self._root and not osp.isdir(
                self._dataset_root):
            raise FileNotFoundError(
                f'{name}: dataset folder {self._dataset_root} not found; '
                f'{hint}')
        for path in paths:
            if not osp.exists(path):
                raise FileNotFoundError(f'{name}: {path} not found; {hint}')

    def _parse_split_file(self) -> Tuple[List[str], Dict[str, List[Record]]]:
        """Read and validate the JSON split file (once per instance)."""
        if self._parsed is None:
            path = self.split_path
            self._parsed = self._parse_entries(
                _load_json(path, SPLIT_LAYOUT), path, ('train', 'val', 'test'))
        return self._parsed

    def _parse_entries(
        self,
        data: Any,
        path: str,
        keys: Sequence[str],
        classnames: Optional[List[str]] = None
    ) -> Tuple[List[str], Dict[str, List[Record]]]:
        """Validate split entries into (class names, records by split)."""
        if not isinstance(data, dict):
            raise ValueError(f'{path}: top level is a '
                             f'{type(data).__name__}; {SPLIT_LAYOUT}')
        missing = [k for k in keys if k not in data]
        if missing:
            raise ValueError(f'{path}: missing key(s) {missing}; '
                             f'{SPLIT_LAYOUT}')

        names: Dict[int, str] = {}
        records: Dict[str, List[Record]] = {}
        for key in keys:
            entries = data[key]
            if not isinstance(entries, list):
                raise ValueError(f'{path}: "{key}" is a '
                                 f'{type(entries).__name__}, not a list; '
                                 f'{SPLIT_LAYOUT}')
            records[key] = []
            for i, entry in enumerate(entries):
                at = f'{path}: entry {i} of "{key}"'
                if not (isinstance(entry, list) and len(entry) == 3
                        and isinstance(entry[0], str) and is_int(entry[1])
                        and isinstance(entry[2], str)):
                    raise ValueError(
                        f'{at} is {entry!r}; each entry must be [relpath '
                        f'(str), label (int), classname (str)] ({DOCS_HINT})')
                relpath, label, cname = entry
                if classnames is not None:
                    if not 0 <= label < len(classnames):
                        raise ValueError(
                            f'{at} has label {label}, out of range [0, '
                            f'{len(classnames)})')
                    expected = classnames[label]
                else:
                    if label < 0:
                        raise ValueError(f'{at} has label {label}; labels '
                                         'must be 0..n-1')
                    expected = names.setdefault(label, cname)
                if cname != expected:
                    raise ValueError(
                        f'{at} names label {label} {cname!r}, but it is '
                        f'{expected!r} elsewhere; one label must have one '
                        'class name')
                records[key].append((relpath, label))

        if classnames is not None:
            return list(classnames), records
        n = len(names)
        if n == 0:
            raise ValueError(f'{path} has no entries; {SPLIT_LAYOUT}')
        outside = sorted(lab for lab in names if lab >= n)
        if outside:
            raise ValueError(
                f'{path}: label {outside[0]} is out of range: the {n} '
                f'distinct labels must be 0..{n - 1}')
        return [names[i] for i in range(n)], records

    def _subset_metainfo(self,
                         num_base_classes: Optional[int]) -> Dict[str, Any]:
        """Decide the label range of the subset and build the metainfo."""
        name = type(self).__name__
        n = len(self._all_classes)
        m = math.ceil(n / 2) if num_base_classes is None else num_base_classes
        if not is_int(m) or not 0 <= m <= n:
            raise ValueError(f'{name}: num_base_classes must be an int in '
                             f'[0, {n}], got {num_base_classes!r}')
        lo, hi = {'all': (0, n), 'base': (0, m), 'novel': (m, n)}[self.subset]
        if lo == hi:
            raise ValueError(f'{name}: the {self.subset!r} subset is empty '
                             f'({n} classes, {m} base)')
        self._label_range = (lo, hi)
        metainfo: Dict[str, Any] = dict(
            classes=tuple(self._all_classes[lo:hi]),
            num_base_classes=0 if self.subset == 'novel' else m)
        for key, values in self._per_class_metainfo().items():
            metainfo[key] = tuple(values[lo:hi])
        return metainfo

    def load_data_list(self) -> List[dict]:
        """Read the split, draw the few shots and take the subset."""
        if self.num_shots > 0 and self.split in self.few_shot_splits:
            records = self._few_shot_records()
        else:
            records = self._load_records(self.split)
        self._parsed = None
        lo, hi = self._label_range
        return [
            dict(img_path=osp.join(self._image_root, relpath),
                 gt_label=label - lo) for relpath, label in records
            if lo <= label < hi
        ]

    def _few_shot_records(self) -> List[Record]:
        """The few-shot records of ``self.split``, cached or drawn."""
        stem = osp.join(self._dataset_root, 'split_fewshot',
                        f'shot_{self.num_shots}-seed_{self.seed}')
        dassl = self.few_shot_sampler == 'dassl'
        path = stem + ('-dassl.json' if dassl else '.json')
        # Dassl's own cache of the draw is read, never written.
        dassl_path = stem + '.pkl'
        shots = {s: min(self.num_shots, self.max_val_shots) if s == 'val'
                 else self.num_shots for s in self.few_shot_splits}
        records = self._load_records(self.split)

        def checked(drawn: List[Record], source: str) -> List[Record]:
            return check_few_shot_draw(
                drawn, split_records=records, shots=shots[self.split],
                class_names=self._all_classes,
                source=f'{source}: "{self.split}"')

        if self.cache_few_shot:
            if dassl and osp.isfile(dassl_path):
                return checked(dassl_cache_records(
                    dassl_path, self.split, self.few_shot_splits,
                    dict(records), self._all_classes, type(self).__name__),
                               dassl_path)
            if osp.isfile(path):
                return checked(self._read_cache(path)[self.split], path)

        splits = [(s, self._load_records(s), k) for s, k in shots.items()]
        if dassl:
            lists, shorts = sample_few_shot_dassl(
                [(records, k) for _, records, k in splits], self.seed)
        else:
            lists, shorts = zip(*(sample_few_shot(
                records, k, self.seed, salt=split)
                                  for split, records, k in splits))
        drawn: Dict[str, List[Record]] = {}
        for (split, _, k), chosen, short in zip(splits, lists, shorts):
            drawn[split] = chosen
            if short:
                listed = ', '.join(f'{self._all_classes[lab]!r} ({cnt})'
                                   for lab, cnt in list(short.items())[:10])
                more = ', ...' if len(short) > 10 else ''
                warnings.warn(
                    f'{type(self).__name__}: {len(short)} class(es) of the '
                    f'{split} split have fewer than {k} images and keep all '
                    f'of them: {listed}{more}')

        if self.cache_few_shot and write_few_shot_cache(
                path, drawn, self._all_classes, type(self).__name__):
            # Another process wrote the file first; its draw is the cache.
            return checked(self._read_cache(path)[self.split], path)
        return drawn[self.split]

    def _read_cache(self, path: str) -> Dict[str, List[Record]]:
        """Load and validate a few-shot cache file."""
        data = _load_json(path, 'delete it to draw the few-shot split again '
                          f'({DOCS_HINT})')
        try:
            return self._parse_entries(data, path, self.few_shot_splits,
                                       self._all_classes)[1]
        except ValueError as e:
            raise ValueError(f'{e}. The few-shot cache does not match the '
                             f'dataset; delete {path} to draw again') from e

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        body = super().extra_repr()
        body.append(f'Split: \t{self.split}')
        body.append(f'Subset: \t{self.subset}')
        if self.num_shots > 0:
            body.append(f'Shots per class: \t{self.num_shots} '
                        f'(seed {self.seed}, {self.few_shot_sampler} '
                        'sampler)')
        return body
