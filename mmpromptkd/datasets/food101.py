"""The Food101 dataset in the CoOp format."""
from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset


@DATASETS.register_module()
class CoOpFood101(CoOpDataset):
    """Food-101 (101 dishes).

    Layout under ``data_root``::

        food-101/
            images/
            split_zhou_Food101.json

    The arguments are those of :class:`CoOpDataset`.
    """

    dataset_dir = 'food-101'
    image_dir = 'images'
    split_file = 'split_zhou_Food101.json'
