"""The ImageNet dataset in the CoOp format.

Also its test-only variants (ImageNet-V2, -Sketch, -A, -R), whose arguments
are those of :class:`~.coop_dataset.CoOpDataset` (``split`` must be
``'test'``); layouts and classes in ``docs/datasets.md``.
"""
import os.path as osp
from typing import Any, Dict, List

from mmpromptkd.registry import DATASETS
from .coop_dataset import DOCS_HINT, CoOpDataset
from .utils import Record, join_nonempty, list_dirs, list_files, \
    read_imagenet_classnames


@DATASETS.register_module()
class CoOpImageNet(CoOpDataset):
    """ImageNet-1k, read from class folders and ``classnames.txt``.

    ``classnames.txt`` has one ``<wnid> <class name>`` line per class; the
    line order defines the labels. As in CoOp, the official validation set
    is the test split and also serves as the val split, which is never
    few-shot sampled.

    Besides the keys of :class:`CoOpDataset`, ``metainfo`` holds
    ``imagenet_class_indices`` (tuple[int]): the index of each class of the
    subset among the ImageNet classes of ``classnames.txt``.

    The arguments are those of :class:`CoOpDataset` (``split_file`` is not
    used).
    """

    dataset_dir = 'imagenet'
    image_dir = 'images'
    split_file = None
    few_shot_splits = ('train', )
    #: The sub-folder of the image folder that holds each split.
    split_dirs: Dict[str, str] = {
        'train': 'train',
        'val': 'val',
        'test': 'val'
    }
    #: How class folders are named: ``'wnid'`` or ``'index'`` (the label).
    class_folder = 'wnid'
    #: Keep only the classes that have a folder (ImageNet-A and -R).
    present_classes_only = False
    #: The dataset folder whose ``classnames.txt`` is the fallback.
    imagenet_dir = 'imagenet'

    @property
    def splits(self) -> tuple:  # type: ignore[override]
        """tuple[str]: The splits this dataset provides."""
        return tuple(self.split_dirs)

    @property
    def classnames_path(self) -> str:
        """str: The dataset's own ``classnames.txt`` if present, else the
        one of the ImageNet folder."""
        own = join_nonempty(self._dataset_root, 'classnames.txt')
        if osp.isfile(own):
            return own
        return join_nonempty(self._root, self.imagenet_dir, 'classnames.txt')

    def _split_root(self, split: str) -> str:
        """The folder holding the class folders of a split."""
        return join_nonempty(self._image_root, self.split_dirs[split])

    def _ann_file(self) -> str:
        """ImageNet has no annotation file."""
        return ''

    def _required_paths(self) -> List[str]:
        """The split folders in use and ``classnames.txt``."""
        splits = [self.split]
        if self.num_shots > 0 and self.split in self.few_shot_splits:
            splits += [s for s in self.few_shot_splits if s != self.split]
        return [self._split_root(s) for s in splits] + [self.classnames_path]

    def _load_classnames(self) -> List[str]:
        """Read ``classnames.txt`` (for -A/-R, the present classes only)."""
        path = self.classnames_path
        wnids, names = read_imagenet_classnames(path)
        indices = list(range(len(wnids)))
        if self.present_classes_only:
            root = self._split_root(self.split)
            position = {w: i for i, w in enumerate(wnids)}
            present = list_dirs(root)
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
        """The ImageNet index of every class."""
        return {'imagenet_class_indices': list(self._class_indices)}

    def _load_records(self, split: str) -> List[Record]:
        """List the class folders of a split, in label order."""
        split_dir = self.split_dirs[split]
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
            prefix = join_nonempty(split_dir, folder_name)
            records.extend(
                (osp.join(prefix, name), label) for name in list_files(folder))
        return records


@DATASETS.register_module()
class CoOpImageNetV2(CoOpImageNet):
    """ImageNet-V2 (matched frequency); class folders are named by the
    ImageNet label (``0`` .. ``999``)."""

    dataset_dir = 'imagenetv2'
    image_dir = 'imagenetv2-matched-frequency-format-val'
    split_dirs = {'test': ''}
    few_shot_splits = ()
    class_folder = 'index'
    present_classes_only = False


@DATASETS.register_module()
class CoOpImageNetSketch(CoOpImageNet):
    """ImageNet-Sketch, all 1000 classes; every class of ``classnames.txt``
    must have a wnid folder."""

    dataset_dir = 'imagenet-sketch'
    image_dir = 'images'
    split_dirs = {'test': ''}
    few_shot_splits = ()
    class_folder = 'wnid'
    present_classes_only = False


@DATASETS.register_module()
class CoOpImageNetA(CoOpImageNet):
    """ImageNet-A (natural adversarial examples), 200 ImageNet classes: the
    wnid folders present, ordered as in ``classnames.txt``."""

    dataset_dir = 'imagenet-adversarial'
    image_dir = 'imagenet-a'
    split_dirs = {'test': ''}
    few_shot_splits = ()
    class_folder = 'wnid'
    present_classes_only = True


@DATASETS.register_module()
class CoOpImageNetR(CoOpImageNet):
    """ImageNet-R (renditions), 200 ImageNet classes: the wnid folders
    present, ordered as in ``classnames.txt``."""

    dataset_dir = 'imagenet-rendition'
    image_dir = 'imagenet-r'
    split_dirs = {'test': ''}
    few_shot_splits = ()
    class_folder = 'wnid'
    present_classes_only = True
