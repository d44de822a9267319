"""Writing the synthetic-shapes domain: a CoOp dataset or an unlabeled
folder."""
import json
import math
import os
from pathlib import Path
from typing import Dict, List, Union

from mmpromptkd.fileio import atomic_write
from .names import (_GENERATOR_ID, CLASSNAMES_FILE, FORMAT_VERSION, IMAGE_DIR,
                    MARKER_FILE, SPLIT_FILE, SPLITS, _check_num_classes,
                    _combo_name, _select_combos, class_folder)
from .render import (_check_domain, _check_image_size, _check_seed,
                     _image_rng, _render)


def _claim_out_dir(out: Path, marker: Dict) -> None:
    """Refuse foreign or differently generated directories, then mark."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f'{out} exists and is not a directory')
    marker_path = out / MARKER_FILE
    if out.is_dir() and any(out.iterdir()):
        if not marker_path.is_file():
            raise FileExistsError(
                f'refusing to write into {out}: the directory is not empty '
                f'and has no {MARKER_FILE}, so it was not produced by this '
                'generator; choose an empty or new directory')
        try:
            previous = json.loads(marker_path.read_text(encoding='utf-8'))
        except ValueError as e:
            raise FileExistsError(
                f'refusing to write into {out}: {marker_path} is not valid '
                'JSON') from e
        if not isinstance(previous, dict) or (
                previous.get('generator') != marker['generator']
                or previous.get('format_version') != FORMAT_VERSION):
            raise FileExistsError(
                f'refusing to write into {out}: {marker_path} does not come '
                f'from this generator version (format {FORMAT_VERSION}); '
                'delete the directory or choose another one')
        if previous != marker:
            raise FileExistsError(
                f'refusing to write into {out}: it was generated with '
                f'different settings ({previous.get("arguments")} vs '
                f'{marker["arguments"]}); delete it or choose another '
                'directory')
    out.mkdir(parents=True, exist_ok=True)
    # Written first: an interrupted run can be resumed by re-running with
    # the same arguments. The split file, written last, marks completion.
    atomic_write(json.dumps(marker, indent=2) + '\n', str(marker_path))


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f'{name} must be a positive int, got {value!r}')


def generate_coop_dataset(out_dir: Union[str, os.PathLike],
                          num_classes: int = 40,
                          train_per_class: int = 64,
                          val_per_class: int = 10,
                          test_per_class: int = 50,
                          image_size: int = 32,
                          seed: int = 0,
                          domain: str = 'target') -> Dict:
    """Write a synthetic-shapes dataset in CoOp format.

    Layout::

        out_dir/
          generator.json            arguments + format version (ownership)
          classnames.txt            "<folder> <class name>" per label
          split_shapes.json         {"train"|"val"|"test": [[relpath, label,
                                     classname], ...]}
          images/<folder>/<split>_<index>.png

    ``relpath`` is relative to ``out_dir/images``. Re-running with the same
    arguments into the same directory rewrites identical bytes.

    Args:
        out_dir (str | os.PathLike): Output directory; must be missing,
            empty, or produced earlier by this function with identical
            arguments.
        num_classes (int): Number of classes. Defaults to 40.
        train_per_class (int): Train images per class. Defaults to 64 (the
            unlabeled pool of the student; teachers sample 16 shots).
        val_per_class (int): Validation images per class. Defaults to 10.
        test_per_class (int): Test images per class. Defaults to 50.
        image_size (int): Image side in pixels. Defaults to 32.
        seed (int): Non-negative image seed (the class list does not
            depend on it). Defaults to 0.
        domain (str): ``'target'`` or the shifted ``'pretrain'``.
            Defaults to ``'target'``.

    Returns:
        dict: ``out_dir`` (str), ``class_names`` (list[str]), ``num_base``
        (int) and ``counts`` (dict of split -> number of images).

    Raises:
        ValueError: On invalid arguments.
        FileExistsError: If ``out_dir`` is non-empty and was not produced
            by this generator with the same arguments.
    """
    _check_num_classes(num_classes)
    per_split = dict(
        train=train_per_class, val=val_per_class, test=test_per_class)
    for split, count in per_split.items():
        _check_count(f'{split}_per_class', count)
    _check_image_size(image_size)
    _check_seed(seed)
    _check_domain(domain)

    combos = _select_combos(num_classes)
    names = [_combo_name(c) for c in combos]
    folders = [class_folder(n) for n in names]

    out = Path(out_dir)
    marker = dict(
        generator=_GENERATOR_ID,
        format_version=FORMAT_VERSION,
        arguments=dict(
            num_classes=num_classes,
            train_per_class=train_per_class,
            val_per_class=val_per_class,
            test_per_class=test_per_class,
            image_size=image_size,
            seed=seed,
            domain=domain))
    _claim_out_dir(out, marker)

    image_root = out / IMAGE_DIR
    split_data: Dict[str, List[list]] = {s: [] for s in SPLITS}
    for label, (combo, name, folder) in enumerate(zip(combos, names,
                                                      folders)):
        (image_root / folder).mkdir(parents=True, exist_ok=True)
        for stream, split in enumerate(SPLITS):
            for index in range(per_split[split]):
                rng = _image_rng(seed, domain, stream, combo, index)
                image = _render(combo, image_size, domain, rng)
                rel = f'{folder}/{split}_{index:04d}.png'
                image.save(image_root / rel, format='PNG')
                split_data[split].append([rel, label, name])

    atomic_write(''.join(f'{f} {n}\n' for f, n in zip(folders, names)),
                 str(out / CLASSNAMES_FILE))
    atomic_write(json.dumps(split_data), str(out / SPLIT_FILE))
    return dict(
        out_dir=str(out),
        class_names=names,
        num_base=math.ceil(num_classes / 2),
        counts={s: len(v) for s, v in split_data.items()})


UNLABELED_CLASSES_FILE = 'classes.txt'


def generate_unlabeled_images(out_dir: Union[str, os.PathLike],
                              num_classes: int = 40,
                              per_class: int = 16,
                              first_index: int = 0,
                              image_size: int = 32,
                              seed: int = 0,
                              domain: str = 'target') -> Dict:
    """Write images of the domain as an unlabeled folder with class names.

    The images are those of the CoOp dataset's train split of the same
    arguments, indices ``first_index .. first_index + per_class - 1`` of
    each class: with ``first_index`` equal to the dataset's
    ``train_per_class`` they are new images of the same distribution,
    beyond its train split. They go to ``images/<n>.png``, numbered in an
    order that interleaves the classes (nothing in a name tells the class);
    ``classes.txt`` lists the class names, one per line, in label order.

    Args:
        out_dir (str | os.PathLike): Output folder (missing, empty, or
            written by this function with the same arguments).
        num_classes (int): Number of classes. Defaults to 40.
        per_class (int): Images per class. Defaults to 16.
        first_index (int): Index of the first image of each class in the
            train stream. Defaults to 0.
        image_size (int): Image side. Defaults to 32.
        seed (int): Image seed. Defaults to 0.
        domain (str): 'target' or 'pretrain'. Defaults to 'target'.

    Returns:
        dict: ``out_dir``, ``class_names`` and ``num_images``.
    """
    _check_num_classes(num_classes)
    _check_count('per_class', per_class)
    if isinstance(first_index, bool) or not isinstance(
            first_index, int) or first_index < 0:
        raise ValueError(f'first_index must be a non-negative int, got '
                         f'{first_index!r}')
    _check_image_size(image_size)
    _check_seed(seed)
    _check_domain(domain)
    combos = _select_combos(num_classes)
    names = [_combo_name(c) for c in combos]
    out = Path(out_dir)
    _claim_out_dir(
        out,
        dict(
            generator=_GENERATOR_ID,
            format_version=FORMAT_VERSION,
            arguments=dict(
                kind='unlabeled',
                num_classes=num_classes,
                per_class=per_class,
                first_index=first_index,
                image_size=image_size,
                seed=seed,
                domain=domain)))
    image_root = out / IMAGE_DIR
    image_root.mkdir(parents=True, exist_ok=True)
    stream = SPLITS.index('train')
    n = 0
    for index in range(first_index, first_index + per_class):
        for combo in combos:
            rng = _image_rng(seed, domain, stream, combo, index)
            _render(combo, image_size, domain, rng).save(
                image_root / f'{n:06d}.png', format='PNG')
            n += 1
    atomic_write(''.join(f'{name}\n' for name in names),
                 str(out / UNLABELED_CLASSES_FILE))
    return dict(out_dir=str(out), class_names=names, num_images=n)
