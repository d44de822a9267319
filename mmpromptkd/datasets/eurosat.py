"""The EuroSAT dataset in the CoOp format."""
from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset


@DATASETS.register_module()
class CoOpEuroSAT(CoOpDataset):
    """EuroSAT (10 land-use classes of Sentinel-2 images).

    Layout under ``data_root``::

        eurosat/
            2750/
            split_zhou_EuroSAT.json

    The arguments are those of :class:`CoOpDataset`.
    """

    dataset_dir = 'eurosat'
    image_dir = '2750'
    split_file = 'split_zhou_EuroSAT.json'
