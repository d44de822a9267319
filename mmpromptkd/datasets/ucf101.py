"""The UCF101 dataset in the CoOp format."""
from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset


@DATASETS.register_module()
class CoOpUCF101(CoOpDataset):
    """UCF101 (101 actions, one middle frame per video).

    Layout under ``data_root``::

        ucf101/
            UCF-101-midframes/
            split_zhou_UCF101.json

    The arguments are those of :class:`CoOpDataset`.
    """

    dataset_dir = 'ucf101'
    image_dir = 'UCF-101-midframes'
    split_file = 'split_zhou_UCF101.json'
