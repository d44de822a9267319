"""The StanfordCars dataset in the CoOp format."""
from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset


@DATASETS.register_module()
class CoOpStanfordCars(CoOpDataset):
    """Stanford Cars (196 car models).

    The paths of the split file are relative to the dataset folder itself
    (``cars_train/...``, ``cars_test/...``), so the image folder is ''.

    Layout under ``data_root``::

        stanford_cars/
            cars_train/
            cars_test/
            split_zhou_StanfordCars.json

    The arguments are those of :class:`CoOpDataset`.
    """

    dataset_dir = 'stanford_cars'
    image_dir = ''
    split_file = 'split_zhou_StanfordCars.json'
