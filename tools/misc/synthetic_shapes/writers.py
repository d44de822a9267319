"""Writing the synthetic-shapes domain: a CoOp dataset or unlabeled folder."""
import json
import math
import os
from pathlib import Path
from typing import Dict, List, Tuple, Union

from mmpromptkd.fileio import atomic_write
from .names import (_GENERATOR_ID, CLASSNAMES_FILE, FORMAT_VERSION, IMAGE_DIR,
                    MARKER_FILE, SPLIT_FILE, SPLITS, _check_num_classes,
                    _combo_name, _select_combos, class_folder)
from .render import _check, _image_rng, _render


def _claim_out_dir(out_dir: Union[str, os.PathLike],
                   arguments: Dict) -> Tuple[Path, tuple, List[str]]:
    """Check, refuse foreign directories, mark; ``(out, combos, names)``."""
    _check_num_classes(arguments['num_classes'])
    for key, value in arguments.items():
        if key.endswith('per_class') and (
                isinstance(value, bool) or not isinstance(value, int)
                or value <= 0):
            raise ValueError(f'{key} must be a positive int, got {value!r}')
    first_index = arguments.get('first_index', 0)
    if isinstance(first_index, bool) or not isinstance(
            first_index, int) or first_index < 0:
        raise ValueError(f'first_index must be a non-negative int, got '
                         f'{first_index!r}')
    _check(arguments['image_size'], arguments['seed'], arguments['domain'])
    combos = _select_combos(arguments['num_classes'])
    out = Path(out_dir)
    marker = dict(generator=_GENERATOR_ID, format_version=FORMAT_VERSION,
                  arguments=arguments)
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
    return out, combos, [_combo_name(c) for c in combos]


def generate_coop_dataset(out_dir: Union[str, os.PathLike],
                          num_classes: int = 40, train_per_class: int = 64,
                          val_per_class: int = 10, test_per_class: int = 50,
                          image_size: int = 32, seed: int = 0,
                          domain: str = 'target') -> Dict:
    """Write a synthetic-shapes dataset in CoOp format (layout:
    docs/synthetic_shapes.md); the same arguments rewrite the same bytes.

    Args:
        out_dir (str | os.PathLike): Missing, empty, or written alike.
        num_classes (int): Number of classes.
        train_per_class (int): Train images per class.
        val_per_class (int): Validation images per class.
        test_per_class (int): Test images per class.
        image_size (int): Image side in pixels.
        seed (int): Non-negative image seed (not of the class list).
        domain (str): ``'target'`` or the shifted ``'pretrain'``.

    Returns:
        dict: ``out_dir``, ``class_names``, ``num_base``, ``counts``.
    """
    out, combos, names = _claim_out_dir(out_dir, dict(
        num_classes=num_classes, train_per_class=train_per_class,
        val_per_class=val_per_class, test_per_class=test_per_class,
        image_size=image_size, seed=seed, domain=domain))
    per_split = dict(train=train_per_class, val=val_per_class,
                     test=test_per_class)
    folders = [class_folder(n) for n in names]
    image_root = out / IMAGE_DIR
    split_data: Dict[str, List[list]] = {s: [] for s in SPLITS}
    for label, (combo, name, folder) in enumerate(zip(combos, names,
                                                      folders)):
        (image_root / folder).mkdir(parents=True, exist_ok=True)
        for stream, split in enumerate(SPLITS):
            for index in range(per_split[split]):
                rng = _image_rng(seed, domain, stream, combo, index)
                rel = f'{folder}/{split}_{index:04d}.png'
                _render(combo, image_size, domain, rng).save(
                    image_root / rel, format='PNG')
                split_data[split].append([rel, label, name])

    atomic_write(''.join(f'{f} {n}\n' for f, n in zip(folders, names)),
                 str(out / CLASSNAMES_FILE))
    atomic_write(json.dumps(split_data), str(out / SPLIT_FILE))
    return dict(out_dir=str(out), class_names=names,
                num_base=math.ceil(num_classes / 2),
                counts={s: len(v) for s, v in split_data.items()})


UNLABELED_CLASSES_FILE = 'classes.txt'


def generate_unlabeled_images(out_dir: Union[str, os.PathLike],
                              num_classes: int = 40, per_class: int = 16,
                              first_index: int = 0, image_size: int = 32,
                              seed: int = 0, domain: str = 'target') -> Dict:
    """Write train-stream images ``first_index ..`` of each class as
    ``images/<n>.png`` (classes interleaved) and ``classes.txt``; the
    arguments as for :func:`generate_coop_dataset`.

    Returns:
        dict: ``out_dir``, ``class_names`` and ``num_images``.
    """
    out, combos, names = _claim_out_dir(out_dir, dict(
        kind='unlabeled', num_classes=num_classes, per_class=per_class,
        first_index=first_index, image_size=image_size, seed=seed,
        domain=domain))
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
