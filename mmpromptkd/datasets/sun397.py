"""The SUN397 dataset in the CoOp format."""
from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset


@DATASETS.register_module()
class CoOpSUN397(CoOpDataset):
    """SUN397 (397 scene categories).

    Layout under ``data_root``::

        sun397/
            SUN397/
            split_zhou_SUN397.json

    The arguments are those of :class:`CoOpDataset`.
    """

    dataset_dir = 'sun397'
    image_dir = 'SUN397'
    split_file = 'split_zhou_SUN397.json'
