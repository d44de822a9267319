"""The ImageNetR dataset in the CoOp format."""
from mmpromptkd.registry import DATASETS
from .imagenet import CoOpImageNet


@DATASETS.register_module()
class CoOpImageNetR(CoOpImageNet):
    """ImageNet-R (renditions), a test-only ImageNet variant.

    It covers 200 ImageNet classes: the classes are the wnid folders present,
    ordered as in ``classnames.txt`` and labelled ``0 .. 199``.

    ``classnames.txt`` is read from the dataset folder if present, else
    from ``imagenet/classnames.txt``. Only ``split='test'`` exists.
    ``metainfo['imagenet_class_indices']`` maps each class to its index
    among the ImageNet classes.

    Layout under ``data_root``::

        imagenet-rendition/
            classnames.txt            (optional, else imagenet/classnames.txt)
            imagenet-r/
                <wnid>/*.jpg

    The arguments are those of :class:`CoOpDataset` (``split`` must be
    ``'test'``; ``num_shots`` has no effect).
    """

    dataset_dir = 'imagenet-rendition'
    image_dir = 'imagenet-r'
    split_dirs = {'test': ''}
    few_shot_splits = ()
    class_folder = 'wnid'
    present_classes_only = True
