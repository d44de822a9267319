"""Images without labels, from a folder tree or a list of files."""
import hashlib
import os
import os.path as osp
from typing import Callable, List, Optional, Sequence, Tuple, Union

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mmpromptkd.registry import DATASETS
from .class_names import read_class_names
from .utils import build_pipeline, shorten

#: File name endings read as images (case does not matter).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif',
                    '.tiff')
SPLITS = ('all', 'train', 'heldout')


def is_image_file(path: str) -> bool:
    """Whether a file name ends in an image extension (any case)."""
    return path.lower().endswith(IMAGE_EXTENSIONS)


def heldout_draw(relpath: str, seed: int) -> float:
    """A number in [0, 1) fixed by an image's relative path and a seed;
    below the held-out fraction, the image is held out."""
    # The name's bytes: names that are not valid UTF-8 have a draw too.
    digest = hashlib.blake2b(f'{seed}:'.encode() + os.fsencode(relpath),
                             digest_size=8).digest()
    return int.from_bytes(digest, 'big') / 2.0**64


def _walk_images(root: str) -> Tuple[List[str], List[str]]:
    """Sorted relative paths of the images and other non-hidden files
    under ``root`` (links followed, each folder once)."""
    images, others = [], []
    seen = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = osp.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        for name in files:
            if not name.startswith('.'):
                relpath = osp.relpath(osp.join(folder, name), root)
                (images if is_image_file(name) else others).append(
                    relpath.replace(os.sep, '/'))
    return sorted(images), sorted(others)


@DATASETS.register_module()
class UnlabeledImages(BaseDataset):
    """Unlabeled images of a folder tree or a file list, with class names.

    Samples are ``dict(img_path)``; an empty source, a non-image, a missing
    or a repeated file is an error naming the files. The held-out split is
    described in ``docs/unlabeled_data.md``.

    Args:
        data_root (str, optional): The images' folder (root of file_list).
        file_list (str, optional): A text file of image paths, one a line.
        classes (str | Sequence[str], optional): Class names or their file.
        split (str): 'all', 'train' or 'heldout'.
        heldout_fraction (float): Fraction held out, in [0, 1).
        heldout_seed (int): Seed of the held-out draw.
        skip_non_images (bool): Skip non-image files instead of stopping.
        pipeline (Sequence[dict | Callable]): Transforms.
        **kwargs: Options of mmengine's ``BaseDataset``.
    """

    def __init__(self,
                 data_root: Optional[str] = None,
                 file_list: Optional[str] = None,
                 classes: Optional[Union[str, Sequence[str]]] = None,
                 split: str = 'all',
                 heldout_fraction: float = 0.0,
                 heldout_seed: int = 0,
                 skip_non_images: bool = False,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 **kwargs) -> None:
        name = type(self).__name__
        if data_root is None and file_list is None:
            raise ValueError(f'{name}: give data_root (a folder of images) '
                             'or file_list (a text file of image paths)')
        if split not in SPLITS:
            raise ValueError(f'{name}: split must be one of {SPLITS}, got '
                             f'{split!r}')
        if not (isinstance(heldout_fraction, (int, float))
                and 0 <= heldout_fraction < 1):
            raise ValueError(f'{name}: heldout_fraction must be in [0, 1), '
                             f'got {heldout_fraction!r}')
        if split != 'all' and heldout_fraction == 0:
            raise ValueError(f'{name}: split={split!r} needs '
                             'heldout_fraction > 0')
        self.file_list = None if file_list is None else osp.expanduser(
            file_list)
        root = data_root if data_root is not None else osp.dirname(
            osp.abspath(self.file_list))
        self.image_root = osp.expanduser(root)
        self.split = split
        self.heldout_fraction = float(heldout_fraction)
        self.heldout_seed = heldout_seed
        self.skip_non_images = skip_non_images
        if self.file_list is not None and not osp.isfile(self.file_list):
            raise FileNotFoundError(f'{name}: file_list {self.file_list} not '
                                    'found; expected a text file with one '
                                    'image path per line')
        if not osp.isdir(self.image_root):
            raise FileNotFoundError(f'{name}: data_root {self.image_root} is '
                                    'not a folder')
        names = () if classes is None else read_class_names(classes)
        super().__init__(
            metainfo=dict(classes=names),
            data_root='',
            pipeline=build_pipeline(pipeline),
            **kwargs)

    def _source(self) -> str:
        return self.file_list or self.image_root

    def _listed_images(self) -> List[str]:
        """The relative image paths of the folder or the list."""
        if self.file_list is None:
            images, others = _walk_images(self.image_root)
            if others:
                self._refuse_or_skip(others, 'file(s) that are not images '
                                     '(by their extension)')
            return images
        with open(self.file_list, encoding='utf-8') as f:
            lines = f.read().rstrip('\r\n').splitlines()
        paths, seen = [], {}
        for lineno, line in enumerate(lines, start=1):
            path = line.strip()
            if not path:
                raise ValueError(f'{self.file_list}, line {lineno}: blank '
                                 'line; expected one image path per line')
            # One file under several names (./a.png, sub/../a.png, links).
            real = osp.realpath(osp.join(self.image_root, path))
            if real in seen:
                raise ValueError(
                    f'{self.file_list}, line {lineno}: {path} is the file '
                    f'listed already at line {seen[real]}; each image must '
                    'be listed once')
            seen[real] = lineno
            paths.append(path)
        others = [p for p in paths if not is_image_file(p)]
        if others:
            self._refuse_or_skip(others, 'listed file(s) that are not images '
                                 '(by their extension)')
            paths = [p for p in paths if is_image_file(p)]
        missing = [
            p for p in paths if not osp.isfile(osp.join(self.image_root, p))
        ]
        if missing:
            raise FileNotFoundError(
                f'{self.file_list}: {len(missing)} listed image(s) not found '
                f'under {self.image_root}: {shorten(missing)}')
        return paths

    def _refuse_or_skip(self, files: List[str], what: str) -> None:
        message = f'{self._source()}: {len(files)} {what}: {shorten(files)}'
        if not self.skip_non_images:
            raise ValueError(f'{message}. Remove them, or set '
                             'skip_non_images=True to skip them (counted in '
                             'the log)')
        print_log(f'{type(self).__name__}: skipped {message}',
                  logger='current')

    def load_data_list(self) -> List[dict]:
        """List the images of the split."""
        paths = self._listed_images()
        if not paths:
            raise ValueError(f'{type(self).__name__}: no image in '
                             f'{self._source()} (extensions '
                             f'{", ".join(IMAGE_EXTENSIONS)})')
        if self.split != 'all':
            keep_heldout = self.split == 'heldout'
            paths = [
                p for p in paths
                if (heldout_draw(p, self.heldout_seed) <
                    self.heldout_fraction) == keep_heldout
            ]
            if not paths:
                raise ValueError(
                    f'{type(self).__name__}: the {self.split!r} split of '
                    f'{self._source()} is empty (heldout_fraction='
                    f'{self.heldout_fraction}); change the fraction')
        return [dict(img_path=osp.join(self.image_root, p)) for p in paths]
