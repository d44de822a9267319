"""Images without labels, from a folder tree or a list of files."""
import hashlib
import os
import os.path as osp
from typing import Callable, List, Optional, Sequence, Tuple, Union

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mmpromptkd.registry import DATASETS, TRANSFORMS
from .class_names import read_class_names

#: File name endings read as images (case does not matter).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif',
                    '.tiff')
SPLITS = ('all', 'train', 'heldout')
_LISTED = 5


def is_image_file(path: str,
                  extensions: Sequence[str] = IMAGE_EXTENSIONS) -> bool:
    """Whether a file name ends in one of ``extensions`` (any case).

    Args:
        path (str): A file name or path.
        extensions (Sequence[str]): Endings with their dot.

    Returns:
        bool: True for an image file name.
    """
    return path.lower().endswith(tuple(e.lower() for e in extensions))


def heldout_draw(relpath: str, seed: int) -> float:
    """A number in [0, 1) fixed by an image's relative path and a seed.

    An image is held out when its number is below the held-out fraction, so
    adding images never moves one from training to held out, and the
    held-out set of a fraction contains that of a smaller one.

    Args:
        relpath (str): The path relative to the dataset root, with ``/``.
        seed (int): The seed of the split.

    Returns:
        float: The draw.
    """
    # The file name's bytes: also names that are not valid UTF-8 (kept by
    # Python as surrogate escapes) have a draw.
    digest = hashlib.blake2b(f'{seed}:'.encode() + os.fsencode(relpath),
                             digest_size=8).digest()
    return int.from_bytes(digest, 'big') / 2.0**64


def _walk_images(root: str) -> Tuple[List[str], List[str]]:
    """Every non-hidden file under ``root`` (links followed, each folder
    once), as sorted relative paths of the images and of the others."""
    images, others = [], []
    seen = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = osp.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        rel = osp.relpath(folder, root)
        for name in files:
            if name.startswith('.'):
                continue
            relpath = name if rel == '.' else osp.join(rel, name)
            relpath = relpath.replace(os.sep, '/')
            (images if is_image_file(name) else others).append(relpath)
    return sorted(images), sorted(others)


@DATASETS.register_module()
class UnlabeledImages(BaseDataset):
    """Images of a domain without labels, and the names of its classes.

    The images are every image file under ``data_root`` or those listed in
    ``file_list``; the class names come from ``classes``
    (:func:`~.class_names.read_class_names`), never from the images or
    folders. Each sample is ``dict(img_path=str)``. An empty folder or
    list, a non-image, a missing or a repeated file is an error naming the
    files. ``split='heldout'`` keeps the images whose :func:`heldout_draw`
    is below ``heldout_fraction`` and ``split='train'`` the others
    (``docs/unlabeled_data.md``).

    Args:
        data_root (str, optional): The folder of the images (or the root of
            the paths of ``file_list``). Defaults to None.
        file_list (str, optional): A text file with one image path per
            line. Defaults to None (every image under ``data_root``).
        classes (str | Sequence[str], optional): The class names, or a file
            holding them. Required for training; None gives an empty tuple
            (e.g. for a held-out set or a source concatenated after a
            labeled one). Defaults to None.
        split (str): ``'all'``, ``'train'`` or ``'heldout'``. Defaults to
            ``'all'``.
        heldout_fraction (float): Fraction of images held out, in
            ``[0, 1)``; needed by the ``'train'`` and ``'heldout'`` splits.
            Defaults to 0.
        heldout_seed (int): Seed of the held-out draw. Defaults to 0.
        skip_non_images (bool): Skip files that are not images instead of
            stopping. Defaults to False.
        pipeline (Sequence[dict | Callable]): Transforms; dicts are built
            from our registry. Defaults to ().
        test_mode (bool): Raise on a failing sample instead of drawing
            another one. Defaults to False.
        indices (int | Sequence[int], optional): Keep only these samples.
            Defaults to None.
        serialize_data (bool): Serialise the sample list for the workers.
            Defaults to True.
        lazy_init (bool): Defer listing the images until first use.
            Defaults to False.
        max_refetch (int): Retries for a sample whose pipeline returns None.
            Defaults to 1000.

    Examples:
        >>> from mmpromptkd.registry import DATASETS
        >>> ds = DATASETS.build(dict(type='UnlabeledImages',
        ...                          data_root='data/my_domain/images',
        ...                          classes='data/my_domain/classes.txt'))
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
                 test_mode: bool = False,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 serialize_data: bool = True,
                 lazy_init: bool = False,
                 max_refetch: int = 1000) -> None:
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
            pipeline=[
                TRANSFORMS.build(t) if isinstance(t, dict) else t
                for t in pipeline
            ],
            indices=indices,
            serialize_data=serialize_data,
            test_mode=test_mode,
            lazy_init=lazy_init,
            max_refetch=max_refetch)

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
                f'under {self.image_root}: ' + ', '.join(missing[:_LISTED]) +
                (' ...' if len(missing) > _LISTED else ''))
        return paths

    def _refuse_or_skip(self, files: List[str], what: str) -> None:
        shown = ', '.join(files[:_LISTED]) + (' ...'
                                              if len(files) > _LISTED else '')
        message = f'{self._source()}: {len(files)} {what}: {shown}'
        if not self.skip_non_images:
            raise ValueError(f'{message}. Remove them, or set '
                             'skip_non_images=True to skip them (counted in '
                             'the log)')
        print_log(f'{type(self).__name__}: skipped {message}',
                  logger='current')

    def load_data_list(self) -> List[dict]:
        """List the images of the split.

        Returns:
            list[dict]: ``dict(img_path=str)`` per image.
        """
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
