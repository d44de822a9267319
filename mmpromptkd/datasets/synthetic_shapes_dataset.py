"""The synthetic shapes domain as a registered CoOp-format dataset."""
from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset


@DATASETS.register_module()
class SyntheticShapes(CoOpDataset):
    """Images written by ``tools/misc/generate_shapes_dataset.py``.

    ``data_root`` is the generator's output folder, which holds ``images/``
    and ``split_shapes.json`` (see ``docs/synthetic_shapes.md``). The
    arguments are those of :class:`CoOpDataset`.
    """

    dataset_dir = ''
    image_dir = 'images'
    split_file = 'split_shapes.json'
