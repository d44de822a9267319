"""The ImageNetV2 dataset in the CoOp format."""
from mmpromptkd.registry import DATASETS
from .imagenet import CoOpImageNet


@DATASETS.register_module()
class CoOpImageNetV2(CoOpImageNet):
    """ImageNet-V2 (matched frequency), a test-only ImageNet variant.

    Its class folders are named by the ImageNet label (``0`` .. ``999``).

    ``classnames.txt`` is read from the dataset folder if present, else
    from ``imagenet/classnames.txt``. Only ``split='test'`` exists.
    ``metainfo['imagenet_class_indices']`` maps each class to its index
    among the ImageNet classes.

    Layout under ``data_root``::

        imagenetv2/
            classnames.txt            (optional, else imagenet/classnames.txt)
            imagenetv2-matched-frequency-format-val/
                0/*.jpeg
                ...
                999/*.jpeg

    The arguments are those of :class:`CoOpDataset` (``split`` must be
    ``'test'``; ``num_shots`` has no effect).
    """

    dataset_dir = 'imagenetv2'
    image_dir = 'imagenetv2-matched-frequency-format-val'
    split_dirs = {'test': ''}
    few_shot_splits = ()
    class_folder = 'index'
    present_classes_only = False
