"""The DTD dataset in the CoOp format."""
from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset


@DATASETS.register_module()
class CoOpDTD(CoOpDataset):
    """Describable Textures Dataset (47 texture categories).

    Layout under ``data_root``::

        dtd/
            images/
            split_zhou_DescribableTextures.json

    The arguments are those of :class:`CoOpDataset`.
    """

    dataset_dir = 'dtd'
    image_dir = 'images'
    split_file = 'split_zhou_DescribableTextures.json'
