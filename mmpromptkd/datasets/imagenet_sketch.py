"""The ImageNetSketch dataset in the CoOp format."""
from mmpromptkd.registry import DATASETS
from .imagenet import CoOpImageNet


@DATASETS.register_module()
class CoOpImageNetSketch(CoOpImageNet):
    """ImageNet-Sketch, a test-only ImageNet variant with all 1000 classes.

    Its class folders are named by wnid; every class of ``classnames.txt``
    must have one.

    ``classnames.txt`` is read from the dataset folder if present, else
    from ``imagenet/classnames.txt``. Only ``split='test'`` exists.
    ``metainfo['imagenet_class_indices']`` maps each class to its index
    among the ImageNet classes.

    Layout under ``data_root``::

        imagenet-sketch/
            classnames.txt            (optional, else imagenet/classnames.txt)
            images/
                <wnid>/*.JPEG

    The arguments are those of :class:`CoOpDataset` (``split`` must be
    ``'test'``; ``num_shots`` has no effect).
    """

    dataset_dir = 'imagenet-sketch'
    image_dir = 'images'
    split_dirs = {'test': ''}
    few_shot_splits = ()
    class_folder = 'wnid'
    present_classes_only = False
