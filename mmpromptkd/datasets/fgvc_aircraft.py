"""FGVC-Aircraft in the CoOp format."""
import os.path as osp
from typing import Dict, List

from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset
from .utils import DOCS_HINT, Record, join_nonempty, read_pairs


@DATASETS.register_module()
class CoOpFGVCAircraft(CoOpDataset):
    """FGVC-Aircraft (100 variants), read from its own text files.

    ``variants.txt`` lists the variants in label order; each line of
    ``images_variant_{split}.txt`` is ``<image id> <variant name>``
    (``docs/datasets.md``). Arguments as :class:`CoOpDataset`.
    """

    dataset_dir = 'fgvc_aircraft'
    image_dir = 'images'
    split_file = None
    variants_file = 'variants.txt'
    list_file = 'images_variant_{split}.txt'
    image_ext = '.jpg'

    def _list_path(self, split: str) -> str:
        return join_nonempty(self._dataset_root,
                             self.list_file.format(split=split))

    def _ann_file(self) -> str:
        return join_nonempty(self.dataset_dir,
                             self.list_file.format(split=self.split))

    def _required_paths(self) -> List[str]:
        return [
            self._image_root,
            join_nonempty(self._dataset_root, self.variants_file)
        ] + [self._list_path(s) for s in self.splits]

    def _load_classnames(self) -> List[str]:
        path = join_nonempty(self._dataset_root, self.variants_file)
        seen: Dict[str, int] = {}
        with open(path, encoding='utf-8') as f:
            for lineno, line in enumerate(f, start=1):
                name = line.strip()
                if not name:
                    continue
                if name in seen:
                    raise ValueError(
                        f'{path}, line {lineno}: variant {name!r} already '
                        f'appears on line {seen[name]}; expected one '
                        f'distinct variant per line ({DOCS_HINT})')
                seen[name] = lineno
        if not seen:
            raise ValueError(f'{path} lists no variant; expected one variant '
                             f'per line ({DOCS_HINT})')
        return list(seen)

    def _load_records(self, split: str) -> List[Record]:
        path = self._list_path(split)
        label_of = {name: i for i, name in enumerate(self._all_classes)}
        records: List[Record] = []
        for lineno, image_id, variant in read_pairs(
                path, '<image id> <variant name>'):
            if variant not in label_of:
                variants = osp.join(self._dataset_root, self.variants_file)
                raise ValueError(f'{path}, line {lineno}: variant {variant!r} '
                                 f'is not listed in {variants}')
            records.append((image_id + self.image_ext, label_of[variant]))
        return records
