"""Miniatures of the data layouts the configs read (a few classes of small
random images, laid out as each dataset class reads them), for dry runs."""
import json
import os
import os.path as osp
from typing import Dict, List

import numpy as np
from PIL import Image

import mmpromptkd  # noqa: F401  (registers the datasets)
from mmpromptkd.registry import DATASETS

#: Images per class of the evaluation splits.
EVAL_PER_CLASS = 2
#: Side of the generated images (the pipelines resize them).
IMAGE_SIZE = 40


def class_names(num_classes: int, prefix: str) -> List[str]:
    return [f'{prefix} class {i}' for i in range(num_classes)]


def write_image(path: str, seed: int, size: int = IMAGE_SIZE) -> None:
    """A random square RGB image; the format follows the extension."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size, size, 3), np.uint8)
    Image.fromarray(pixels).save(path)


def _counts(train_per_class: int) -> Dict[str, int]:
    return dict(train=train_per_class, val=EVAL_PER_CLASS,
                test=EVAL_PER_CLASS)


def write_json_split(root: str, cls: type, num_classes: int,
                     train_per_class: int) -> None:
    """A JSON-split CoOp dataset (DTD, Caltech101, ...)."""
    names = class_names(num_classes, cls.__name__)
    image_root = osp.join(root, cls.dataset_dir, cls.image_dir)
    split = {}
    for name, count in _counts(train_per_class).items():
        entries = []
        for label, cname in enumerate(names):
            for i in range(count):
                relpath = f'c{label}/{name}_{i}.jpg'
                write_image(osp.join(image_root, relpath),
                            hash((name, label, i)) % 2**32)
                entries.append([relpath, label, cname])
        split[name] = entries
    with open(osp.join(root, cls.dataset_dir, cls.split_file), 'w') as f:
        json.dump(split, f)


def write_fgvc_aircraft(root: str, cls: type, num_classes: int,
                        train_per_class: int) -> None:
    """FGVC-Aircraft: ``variants.txt`` and one list per split."""
    folder = osp.join(root, cls.dataset_dir)
    names = class_names(num_classes, 'aircraft')
    os.makedirs(folder, exist_ok=True)
    with open(osp.join(folder, 'variants.txt'), 'w') as f:
        f.write('\n'.join(names) + '\n')
    n = 0
    for split, count in _counts(train_per_class).items():
        lines = []
        for label, cname in enumerate(names):
            for _ in range(count):
                image_id = f'{1000000 + n:07d}'
                n += 1
                write_image(
                    osp.join(folder, cls.image_dir, image_id + '.jpg'), n)
                lines.append(f'{image_id} {cname}')
        with open(osp.join(folder, f'images_variant_{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')


def write_imagenet_family(root: str, cls: type, num_classes: int,
                          train_per_class: int) -> None:
    """ImageNet or a variant: class folders and ``classnames.txt``."""
    wnids = [f'n{i:08d}' for i in range(num_classes)]
    names = class_names(num_classes, 'imagenet')
    listing = osp.join(root, cls.imagenet_dir, 'classnames.txt')
    os.makedirs(osp.dirname(listing), exist_ok=True)
    with open(listing, 'w') as f:
        f.write(''.join(f'{w} {n}\n' for w, n in zip(wnids, names)))
    image_root = osp.join(root, cls.dataset_dir, cls.image_dir)
    counts = _counts(train_per_class)
    for split, split_dir in cls.split_dirs.items():
        for index, wnid in enumerate(wnids):
            folder = str(index) if cls.class_folder == 'index' else wnid
            for i in range(counts[split]):
                write_image(
                    osp.join(image_root, split_dir, folder,
                             f'{split}_{i}.jpg'), index * 100 + i)


def write_unlabeled_folder(root: str, num_classes: int, images: int,
                           size: int = IMAGE_SIZE) -> Dict[str, str]:
    """Unlabeled images and a class list; ``data_root`` and ``classes``."""
    image_root = osp.join(root, 'images')
    for i in range(images):
        write_image(osp.join(image_root, f'sub{i % 3}', f'{i:04d}.png'), i,
                    size)
    classes = osp.join(root, 'classes.txt')
    with open(classes, 'w') as f:
        f.write('\n'.join(class_names(num_classes, 'unlabeled')) + '\n')
    return dict(data_root=image_root, classes=classes)


def write_layout(dataset_type: str, root: str, num_classes: int,
                 train_per_class: int) -> None:
    """Write the layout the CoOp dataset ``dataset_type`` reads under root.
    """
    from mmpromptkd.datasets import (CoOpDataset, CoOpFGVCAircraft,
                                     CoOpImageNet)
    cls = DATASETS.get(dataset_type)
    coop = cls is not None and issubclass(cls, CoOpDataset)
    if coop and issubclass(cls, CoOpImageNet):
        write_imagenet_family(root, cls, num_classes, train_per_class)
    elif coop and issubclass(cls, CoOpFGVCAircraft):
        write_fgvc_aircraft(root, cls, num_classes, train_per_class)
    elif coop and cls.split_file:
        write_json_split(root, cls, num_classes, train_per_class)
    else:
        raise ValueError(f'no miniature of the data of {dataset_type}')
