"""The Caltech101 dataset in the CoOp format."""
from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset


@DATASETS.register_module()
class CoOpCaltech101(CoOpDataset):
    """Caltech-101 (100 object categories).

    The split file leaves out the background class.

    Layout under ``data_root``::

        caltech-101/
            101_ObjectCategories/
            split_zhou_Caltech101.json

    The arguments are those of :class:`CoOpDataset`.
    """

    dataset_dir = 'caltech-101'
    image_dir = '101_ObjectCategories'
    split_file = 'split_zhou_Caltech101.json'
