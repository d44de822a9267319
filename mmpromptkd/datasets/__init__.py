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
from .coop_benchmarks import (CoOpCaltech101, CoOpDTD, CoOpEuroSAT,
                              CoOpFood101, CoOpOxfordFlowers, CoOpOxfordPets,
                              CoOpStanfordCars, CoOpSUN397, CoOpUCF101,
                              SyntheticShapes)
from .coop_dataset import CoOpDataset
from .fgvc_aircraft import CoOpFGVCAircraft
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
