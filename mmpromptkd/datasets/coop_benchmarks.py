"""The CoOp benchmarks but ImageNet: classes of fixed folders and split
file, and FGVC-Aircraft's own text files (``docs/datasets.md``)."""
import os.path as osp
from typing import Dict, List

from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset
from .utils import DOCS_HINT, Record, join_nonempty, read_pairs


def _benchmark(name: str, doc: str, dataset_dir: str, image_dir: str,
               split_file: str) -> type:
    """Define and register a :class:`CoOpDataset` of fixed folders."""
    cls = type(name, (CoOpDataset, ),
               dict(__doc__=doc, __module__=__name__,
                    dataset_dir=dataset_dir, image_dir=image_dir,
                    split_file=split_file))
    return DATASETS.register_module(module=cls)


CoOpCaltech101 = _benchmark(
    'CoOpCaltech101', 'Caltech-101 (100 categories; no background class).',
    'caltech-101', '101_ObjectCategories', 'split_zhou_Caltech101.json')
CoOpDTD = _benchmark(
    'CoOpDTD', 'Describable Textures Dataset (47 texture categories).',
    'dtd', 'images', 'split_zhou_DescribableTextures.json')
CoOpEuroSAT = _benchmark(
    'CoOpEuroSAT', 'EuroSAT (10 land-use classes of Sentinel-2 images).',
    'eurosat', '2750', 'split_zhou_EuroSAT.json')
CoOpFood101 = _benchmark('CoOpFood101', 'Food-101 (101 dishes).',
                         'food-101', 'images', 'split_zhou_Food101.json')
CoOpOxfordFlowers = _benchmark(
    'CoOpOxfordFlowers', 'Oxford 102 Flowers.', 'oxford_flowers', 'jpg',
    'split_zhou_OxfordFlowers.json')
CoOpOxfordPets = _benchmark(
    'CoOpOxfordPets', 'Oxford-IIIT Pets (37 cat and dog breeds).',
    'oxford_pets', 'images', 'split_zhou_OxfordPets.json')
# The split file's paths start at the dataset folder.
CoOpStanfordCars = _benchmark(
    'CoOpStanfordCars', 'Stanford Cars (196 car models).', 'stanford_cars',
    '', 'split_zhou_StanfordCars.json')
CoOpSUN397 = _benchmark('CoOpSUN397', 'SUN397 (397 scene categories).',
                        'sun397', 'SUN397', 'split_zhou_SUN397.json')
CoOpUCF101 = _benchmark(
    'CoOpUCF101', 'UCF101 (101 actions, one middle frame per video).',
    'ucf101', 'UCF-101-midframes', 'split_zhou_UCF101.json')
SyntheticShapes = _benchmark(
    'SyntheticShapes',
    'The output folder of ``tools/misc/generate_shapes_dataset.py`` as '
    '``data_root`` (``docs/synthetic_shapes.md``).', '', 'images',
    'split_shapes.json')


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
