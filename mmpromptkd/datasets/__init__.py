"""CoOp-format datasets (base/novel subsets, few-shot), unlabeled images
(folders, lists, tar shards) and their transforms (``docs/datasets.md``,
``docs/unlabeled_data.md``)."""
from .coop_benchmarks import (CoOpCaltech101, CoOpDTD, CoOpEuroSAT,
                              CoOpFGVCAircraft, CoOpFood101, CoOpOxfordFlowers,
                              CoOpOxfordPets, CoOpStanfordCars, CoOpSUN397,
                              CoOpUCF101, SyntheticShapes)
from .coop_dataset import CoOpDataset
from .imagenet import (CoOpImageNet, CoOpImageNetA, CoOpImageNetR,
                       CoOpImageNetSketch, CoOpImageNetV2)
from .nested_subset import NestedSubset
from .transforms import (LoadImageFromFileSafe, ReplayableRandomFlip,
                         ReplayableRandomResizedCrop)
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
