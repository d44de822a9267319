"""The OxfordPets dataset in the CoOp format."""
from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset


@DATASETS.register_module()
class CoOpOxfordPets(CoOpDataset):
    """Oxford-IIIT Pets (37 cat and dog breeds).

    Layout under ``data_root``::

        oxford_pets/
            images/
            split_zhou_OxfordPets.json

    The arguments are those of :class:`CoOpDataset`.
    """

    dataset_dir = 'oxford_pets'
    image_dir = 'images'
    split_file = 'split_zhou_OxfordPets.json'
