"""The CoOp benchmarks read from a JSON split file: each class fixes the
folders and split file of :class:`CoOpDataset` (``docs/datasets.md``)."""
from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset


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
