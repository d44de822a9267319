"""ImageNet in the CoOp format, and its test-only variants (-V2, -Sketch,
-A, -R); layouts and classes in ``docs/datasets.md``."""
import os.path as osp
from typing import Any, Dict, List

from mmpromptkd.registry import DATASETS
from .coop_dataset import CoOpDataset
from .utils import (DOCS_HINT, Record, join_nonempty, list_folder,
                    read_imagenet_classnames)


@DATASETS.register_module()
class CoOpImageNet(CoOpDataset):
    """ImageNet-1k, read from class folders and ``classnames.txt``.

    As in CoOp, the official validation set is both the test and the val
    split (``docs/datasets.md``). ``metainfo`` also holds
    ``imagenet_class_indices`` (indices in ``classnames.txt``). Arguments
    as :class:`CoOpDataset` (no ``split_file``).
    """

    dataset_dir = 'imagenet'
    image_dir = 'images'
    few_shot_splits = ('train', )
    #: The sub-folder of the image folder that holds each split.
    split_dirs: Dict[str, str] = {'train': 'train', 'val': 'val',
                                  'test': 'val'}
    #: How class folders are named: ``'wnid'`` or ``'index'`` (the label).
    class_folder = 'wnid'
    #: Keep only the classes that have a folder (ImageNet-A and -R).
    present_classes_only = False
    #: The dataset folder whose ``classnames.txt`` is the fallback.
    imagenet_dir = 'imagenet'

    @property
    def classnames_path(self) -> str:
        """str: The dataset's own ``classnames.txt``, else ImageNet's."""
        own = join_nonempty(self._dataset_root, 'classnames.txt')
        if osp.isfile(own):
            return own
        return join_nonempty(self._root, self.imagenet_dir, 'classnames.txt')

    def _split_root(self, split: str) -> str:
        return join_nonempty(self._image_root, self.split_dirs[split])

    def _ann_file(self) -> str:
        return ''

    def _required_paths(self) -> List[str]:
        # The few-shot draw reads the train split only.
        return [self._split_root(self.split), self.classnames_path]

    def _load_classnames(self) -> List[str]:
        path = self.classnames_path
        wnids, names = read_imagenet_classnames(path)
        indices = list(range(len(wnids)))
        if self.present_classes_only:
            root = self._split_root(self.split)
            position = {w: i for i, w in enumerate(wnids)}
            present = list_folder(root, dirs=True)
            unknown = [w for w in present if w not in position]
            if unknown:
                raise ValueError(
                    f'{type(self).__name__}: folder(s) {unknown[:5]} in '
                    f'{root} are not wnids listed in {path}; expected '
                    f'<wnid> class folders ({DOCS_HINT})')
            if not present:
                raise ValueError(f'{type(self).__name__}: {root} has no class '
                                 f'folder; expected <wnid> class folders '
                                 f'({DOCS_HINT})')
            indices = sorted(position[w] for w in present)
        self._class_wnids = [wnids[i] for i in indices]
        self._class_indices = indices
        return [names[i] for i in indices]

    def _per_class_metainfo(self) -> Dict[str, List[Any]]:
        return {'imagenet_class_indices': list(self._class_indices)}

    def _load_records(self, split: str) -> List[Record]:
        root = self._split_root(split)
        records: List[Record] = []
        for label, (wnid, index) in enumerate(
                zip(self._class_wnids, self._class_indices)):
            folder_name = str(index) if self.class_folder == 'index' else wnid
            folder = osp.join(root, folder_name)
            if not osp.isdir(folder):
                raise FileNotFoundError(
                    f'{type(self).__name__}: class folder {folder} not found; '
                    f'expected one folder per class of {self.classnames_path} '
                    f'under {root} ({DOCS_HINT})')
            prefix = join_nonempty(self.split_dirs[split], folder_name)
            records.extend((osp.join(prefix, name), label)
                           for name in list_folder(folder))
        return records


class _TestOnlyImageNet(CoOpImageNet):
    """An ImageNet test set of its own: one folder, no train or val."""
    splits = ('test', )
    split_dirs = {'test': ''}
    few_shot_splits = ()


@DATASETS.register_module()
class CoOpImageNetV2(_TestOnlyImageNet):
    """ImageNet-V2 (matched frequency); class folders named by label."""
    dataset_dir = 'imagenetv2'
    image_dir = 'imagenetv2-matched-frequency-format-val'
    class_folder = 'index'


@DATASETS.register_module()
class CoOpImageNetSketch(_TestOnlyImageNet):
    """ImageNet-Sketch: a wnid folder for each of the 1000 classes."""
    dataset_dir = 'imagenet-sketch'
    image_dir = 'images'


@DATASETS.register_module()
class CoOpImageNetA(_TestOnlyImageNet):
    """ImageNet-A: the 200 classes whose wnid folders are present."""
    dataset_dir = 'imagenet-adversarial'
    image_dir = 'imagenet-a'
    present_classes_only = True


@DATASETS.register_module()
class CoOpImageNetR(_TestOnlyImageNet):
    """ImageNet-R (renditions): the 200 classes whose wnid folders are
    present."""
    dataset_dir = 'imagenet-rendition'
    image_dir = 'imagenet-r'
    present_classes_only = True
