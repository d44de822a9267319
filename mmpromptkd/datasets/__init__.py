"""CoOp-format datasets with base/novel subsets and few-shot sampling.

Every class carries the ``CoOp`` prefix, so that none shadows mmpretrain's
datasets of the same benchmark (``DTD``, ``ImageNet``, ...), which read other
split files. :class:`SyntheticShapes` reads the synthetic dataset that
``tools/misc/generate_shapes_dataset.py`` writes in the same format.

Images without labels, for distillation on one's own domain, come from
:class:`UnlabeledImages` (a folder or a file list) or
:class:`UnlabeledShards` (tar shards, streamed); :class:`NestedSubset` keeps
a nested, seeded fraction or number of any dataset's images.
Teacher caches (recorded views and teacher logits) live in
:mod:`mmpromptkd.teacher_cache`.
"""
from .caltech101 import CoOpCaltech101
from .coop_dataset import CoOpDataset
from .dtd import CoOpDTD
from .eurosat import CoOpEuroSAT
from .fgvc_aircraft import CoOpFGVCAircraft
from .food101 import CoOpFood101
from .imagenet import CoOpImageNet
from .imagenet_a import CoOpImageNetA
from .imagenet_r import CoOpImageNetR
from .imagenet_sketch import CoOpImageNetSketch
from .imagenet_v2 import CoOpImageNetV2
from .nested_subset import NestedSubset
from .oxford_flowers import CoOpOxfordFlowers
from .oxford_pets import CoOpOxfordPets
from .stanford_cars import CoOpStanfordCars
from .sun397 import CoOpSUN397
from .synthetic_shapes_dataset import SyntheticShapes
from .transforms import (LoadImageFromFileSafe, ReplayableRandomFlip,
                         ReplayableRandomResizedCrop)
from .ucf101 import CoOpUCF101
from .unlabeled_images import UnlabeledImages
from .unlabeled_shards import UnlabeledShards

__all__ = [
    'CoOpDataset', 'CoOpCaltech101', 'CoOpOxfordPets', 'CoOpStanfordCars',
    'CoOpOxfordFlowers', 'CoOpFood101', 'CoOpFGVCAircraft', 'CoOpSUN397',
    'CoOpDTD', 'CoOpEuroSAT', 'CoOpUCF101', 'CoOpImageNet', 'CoOpImageNetV2',
    'CoOpImageNetSketch', 'CoOpImageNetA', 'CoOpImageNetR', 'SyntheticShapes',
    'LoadImageFromFileSafe', 'UnlabeledImages', 'UnlabeledShards',
    'NestedSubset', 'ReplayableRandomResizedCrop', 'ReplayableRandomFlip'
]
