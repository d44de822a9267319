"""A seeded subset of a dataset's images whose smaller sizes nest."""
import copy
import math
import random
import warnings
from collections import defaultdict
from typing import Dict, Hashable, List, Optional, Union

from mmengine.dataset import BaseDataset

from mmpromptkd.registry import DATASETS
from .utils import is_int


@DATASETS.register_module()
class NestedSubset(BaseDataset):
    """Keep a fraction or a number of a dataset's images, nested by size.

    With one seed a smaller subset lies inside a larger one (the draw:
    ``docs/unlabeled_data.md``); the wrapped dataset's pipeline, order and
    metainfo are kept.

    Args:
        dataset (dict | BaseDataset): The dataset, or its config.
        fraction (float, optional): Fraction of each group, in (0, 1].
        count (int, optional): Images per class (in all without labels).
        seed (int): Seed of the order.
        serialize_data (bool): As in mmengine's ``BaseDataset``.
        lazy_init (bool): As in mmengine's ``BaseDataset``.
        max_refetch (int): As in mmengine's ``BaseDataset``. The subset
            reads the wrapped dataset's pipeline and metainfo.
    """

    def __init__(self,
                 dataset: Union[dict, BaseDataset],
                 fraction: Optional[float] = None,
                 count: Optional[int] = None,
                 seed: int = 1,
                 serialize_data: bool = True,
                 lazy_init: bool = False,
                 max_refetch: int = 1000) -> None:
        name = type(self).__name__
        if (fraction is None) == (count is None):
            raise ValueError(f'{name}: give exactly one of fraction and '
                             f'count, got fraction={fraction!r}, '
                             f'count={count!r}')
        if fraction is not None and (isinstance(fraction, bool) or not (
                isinstance(fraction, (int, float)) and 0 < fraction <= 1)):
            raise ValueError(f'{name}: fraction must be in (0, 1], got '
                             f'{fraction!r}')
        if count is not None and (not is_int(count) or count < 1):
            raise ValueError(f'{name}: count must be an int >= 1, got '
                             f'{count!r}')
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        self.fraction = fraction
        self.count = count
        self.seed = seed
        self.source_name = type(dataset).__name__
        self._source: Optional[BaseDataset] = dataset
        super().__init__(
            lazy_init=True,
            test_mode=getattr(dataset, 'test_mode', False),
            serialize_data=serialize_data, max_refetch=max_refetch)
        # Set after construction: mmengine would read a string metainfo
        # value (e.g. a CoOp subset name) as a file name.
        self._metainfo = copy.deepcopy(dict(dataset.metainfo))
        if not lazy_init:
            self.full_init()

    def load_data_list(self) -> List[dict]:
        """Choose the images."""
        source = self._source
        infos = []
        for i in range(len(source)):
            info = dict(source.get_data_info(i))
            info.pop('sample_idx', None)
            infos.append(info)
        labeled = [('gt_label' in info) for info in infos]
        if self.count is not None and any(labeled) and not all(labeled):
            raise ValueError(
                f'{type(self).__name__}: {self.source_name} mixes samples '
                'with and without labels; count would mean images per class '
                'for some and in all for others: give a fraction')
        groups: Dict[Hashable, List[int]] = defaultdict(list)
        for i, info in enumerate(infos):
            label = info.get('gt_label')
            groups[None if label is None else int(label)].append(i)

        kept: List[int] = []
        short: Dict[Hashable, int] = {}
        for group, members in groups.items():
            n = len(members)
            if self.fraction is not None:
                k = math.ceil(self.fraction * n)
            elif group is None:
                if self.count > n:
                    raise ValueError(
                        f'{type(self).__name__}: count={self.count} but '
                        f'{self.source_name} has only {n} images')
                k = self.count
            else:
                k = min(self.count, n)
                if n < self.count:
                    short[group] = n
            members.sort(key=lambda i: infos[i]['img_path'])
            random.Random(f'{self.seed}-{group}').shuffle(members)
            kept.extend(members[:k])
        if short:
            listed = ', '.join(f'label {g} ({n})'
                               for g, n in list(short.items())[:10])
            warnings.warn(f'{type(self).__name__}: {len(short)} class(es) of '
                          f'{self.source_name} have fewer than {self.count} '
                          f'images and keep all of them: {listed}')
        return [dict(infos[i], source_index=i) for i in sorted(kept)]

    def prepare_data(self, idx: int) -> Optional[dict]:
        """The wrapped dataset's sample through its pipeline (None if it
        drops it, so that another one is drawn)."""
        index = self.get_data_info(idx)['source_index']
        if hasattr(self._source, 'prepare_data'):
            return self._source.prepare_data(index)
        return self._source[index]
