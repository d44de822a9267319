"""The CoOp benchmarks but ImageNet: classes of fixed folders and split
file, and FGVC-Aircraft's own text files (``docs/datasets.md``)."""
import os.path as osp
from typing import Dict, List

from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset
from .utils import DOCS_HINT, Record, join_nonempty, read_pairs


@DATASETS.register_module()
class CoOpCaltech101(CoOpDataset):
    """Caltech-101 (100 categories; no background class)."""
    dataset_dir = 'caltech-101'
    image_dir = '101_ObjectCategories'
    split_file = 'split_zhou_Caltech101.json'


@DATASETS.register_module()
class CoOpDTD(CoOpDataset):
    """Describable Textures Dataset (47 texture categories)."""
    dataset_dir = 'dtd'
    image_dir = 'images'
    split_file = 'split_zhou_DescribableTextures.json'


@DATASETS.register_module()
class CoOpEuroSAT(CoOpDataset):
    """EuroSAT (10 land-use classes of Sentinel-2 images)."""
    dataset_dir = 'eurosat'
    image_dir = '2750'
    split_file = 'split_zhou_EuroSAT.json'


@DATASETS.register_module()
class CoOpFood101(CoOpDataset):
    """Food-101 (101 dishes)."""
    dataset_dir = 'food-101'
    image_dir = 'images'
    split_file = 'split_zhou_Food101.json'


@DATASETS.register_module()
class CoOpOxfordFlowers(CoOpDataset):
    """Oxford 102 Flowers."""
    dataset_dir = 'oxford_flowers'
    image_dir = 'jpg'
    split_file = 'split_zhou_OxfordFlowers.json'


@DATASETS.register_module()
class CoOpOxfordPets(CoOpDataset):
    """Oxford-IIIT Pets (37 cat and dog breeds)."""
    dataset_dir = 'oxford_pets'
    image_dir = 'images'
    split_file = 'split_zhou_OxfordPets.json'


@DATASETS.register_module()
class CoOpStanfordCars(CoOpDataset):
    """Stanford Cars (196 car models)."""
    dataset_dir = 'stanford_cars'
    # The split file's paths start at the dataset folder.
    image_dir = ''
    split_file = 'split_zhou_StanfordCars.json'


@DATASETS.register_module()
class CoOpSUN397(CoOpDataset):
    """SUN397 (397 scene categories)."""
    dataset_dir = 'sun397'
    image_dir = 'SUN397'
    split_file = 'split_zhou_SUN397.json'


@DATASETS.register_module()
class CoOpUCF101(CoOpDataset):
    """UCF101 (101 actions, one middle frame per video)."""
    dataset_dir = 'ucf101'
    image_dir = 'UCF-101-midframes'
    split_file = 'split_zhou_UCF101.json'


@DATASETS.register_module()
class SyntheticShapes(CoOpDataset):
    """The output folder of ``tools/misc/generate_shapes_dataset.py`` as
    ``data_root`` (``docs/synthetic_shapes.md``)."""
    dataset_dir = ''
    image_dir = 'images'
    split_file = 'split_shapes.json'


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
