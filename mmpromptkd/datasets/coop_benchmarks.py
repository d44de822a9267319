"""The CoOp benchmarks that are read from a JSON split file.

Each class only fixes the folders and the split file of
:class:`~.coop_dataset.CoOpDataset` (layouts in ``docs/datasets.md``); the
arguments are those of :class:`~.coop_dataset.CoOpDataset`.
:class:`SyntheticShapes` reads the synthetic domain that
``tools/misc/generate_shapes_dataset.py`` writes in the same format.
"""
from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset


@DATASETS.register_module()
class CoOpCaltech101(CoOpDataset):
    """Caltech-101 (100 object categories; the split file leaves out the
    background class)."""

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
    """Stanford Cars (196 car models).

    The split file's paths (``cars_train/...``, ``cars_test/...``) are
    relative to the dataset folder itself, so the image folder is ''.
    """

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
    """Images written by ``tools/misc/generate_shapes_dataset.py``.

    ``data_root`` is the generator's output folder, which holds ``images/``
    and ``split_shapes.json`` (see ``docs/synthetic_shapes.md``).
    """

    dataset_dir = ''
    image_dir = 'images'
    split_file = 'split_shapes.json'
