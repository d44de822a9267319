"""CoOp-format datasets with base/novel subsets and few-shot sampling.

``synthetic_shapes`` is the generator of a synthetic dataset in the same
format, read with :class:`SyntheticShapes`.
"""
from . import synthetic_shapes, templates
from .caltech101 import Caltech101
from .coop_dataset import CoOpDataset
from .dtd import DTD
from .eurosat import EuroSAT
from .fgvc_aircraft import FGVCAircraft
from .food101 import Food101
from .imagenet import ImageNet
from .imagenet_a import ImageNetA
from .imagenet_r import ImageNetR
from .imagenet_sketch import ImageNetSketch
from .imagenet_v2 import ImageNetV2
from .oxford_flowers import OxfordFlowers
from .oxford_pets import OxfordPets
from .stanford_cars import StanfordCars
from .sun397 import SUN397
from .transforms import LoadImageFromFileSafe
from .synthetic_shapes_dataset import SyntheticShapes
from .ucf101 import UCF101

__all__ = [
    'CoOpDataset', 'Caltech101', 'OxfordPets', 'StanfordCars', 'OxfordFlowers',
    'Food101', 'FGVCAircraft', 'SUN397', 'DTD', 'EuroSAT', 'UCF101',
    'ImageNet', 'ImageNetV2', 'ImageNetSketch', 'ImageNetA', 'ImageNetR',
    'SyntheticShapes', 'synthetic_shapes', 'templates',
    'LoadImageFromFileSafe'
]
