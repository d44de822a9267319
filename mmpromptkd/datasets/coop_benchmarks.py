"""The CoOp benchmarks read from a JSON split file: each class fixes the
folders and split file of :class:`CoOpDataset` (``docs/datasets.md``)."""
from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset


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
    """Stanford Cars (196 models); paths relative to the dataset folder."""

    dataset_dir = 'stanford_cars'
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
