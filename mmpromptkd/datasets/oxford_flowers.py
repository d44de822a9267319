"""The OxfordFlowers dataset in the CoOp format."""
from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset


@DATASETS.register_module()
class CoOpOxfordFlowers(CoOpDataset):
    """Oxford 102 Flowers.

    Layout under ``data_root``::

        oxford_flowers/
            jpg/
            split_zhou_OxfordFlowers.json

    The arguments are those of :class:`CoOpDataset`.
    """

    dataset_dir = 'oxford_flowers'
    image_dir = 'jpg'
    split_file = 'split_zhou_OxfordFlowers.json'
