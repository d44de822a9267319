"""Tests of the synthetic-shapes generator (CoOp format)."""
import itertools
import json
import math
import os
import os.path as osp
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pytest
from PIL import Image

import synthetic_shapes as shapes
from tool_scripts import load_tool

#: Every attribute combination, colour-major (the canonical class order).
ALL_NAMES = [f'{c} {p} {s}' for c, p, s in itertools.product(
    shapes.COLOURS, shapes.PATTERNS, shapes.SHAPES)]

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI = REPO_ROOT / 'tools' / 'misc' / 'generate_shapes_dataset.py'

# Small but non-trivial: odd class count (base half is the bigger one).
SMALL = dict(
    num_classes=7,
    train_per_class=3,
    val_per_class=1,
    test_per_class=2,
    image_size=16,
    seed=3)


def read_tree(root: Path) -> Dict[str, bytes]:
    """All files under ``root`` by relative path."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob('*')) if p.is_file()
    }


def attributes(names) -> Tuple[set, set, set]:
    parts = [shapes.parse_class_name(n) for n in names]
    return tuple({p[i] for p in parts} for i in range(3))


@pytest.fixture(scope='module')
def small_dataset(tmp_path_factory) -> Tuple[Path, dict]:
    out = tmp_path_factory.mktemp('shapes') / 'small'
    summary = shapes.generate_coop_dataset(out, **SMALL)
    return out, summary


class TestClassList:

    def test_default_list(self):
        names = shapes.list_class_names(40)
        assert len(names) == 40
        assert len(set(names)) == 40
        assert set(names) <= set(ALL_NAMES)
        assert names == shapes.list_class_names(40)

    def test_default_list_is_pinned(self):
        # The class list is part of the benchmark definition (documented in
        # docs/synthetic_shapes.md); a change must be deliberate.
        names = shapes.list_class_names(40)
        assert names[:3] == [
            'pink checkered square', 'red striped circle', 'yellow dotted star'
        ]
        assert names[20:23] == [
            'green dotted cross', 'blue plain star', 'red checkered square'
        ]

    def test_all_combinations(self):
        names = ALL_NAMES
        assert len(names) == shapes.MAX_CLASSES == 8 * 4 * 6
        assert len(set(names)) == len(names)
        assert names[0] == 'red plain circle'

    @pytest.mark.parametrize('num_classes',
                             [4, 5, 6, 7, 9, 16, 33, 40, 41, 100, 191, 192])
    def test_base_novel_share_every_attribute(self, num_classes):
        base, novel = shapes.split_base_novel(num_classes)
        assert len(base) == math.ceil(num_classes / 2)
        assert len(base) + len(novel) == num_classes
        assert not set(base) & set(novel)
        assert base + novel == shapes.list_class_names(num_classes)
        # Novel classes are new combinations of attributes seen in base
        # classes, and no attribute value is exclusive to base either.
        for base_vals, novel_vals in zip(attributes(base), attributes(novel)):
            assert base_vals == novel_vals

    def test_forty_classes_use_every_attribute(self):
        base, novel = shapes.split_base_novel(40)
        for half in (base, novel):
            colours, patterns, shape_set = attributes(half)
            assert colours == set(shapes.COLOURS)
            assert patterns == set(shapes.PATTERNS)
            assert shape_set == set(shapes.SHAPES)
            # Balanced: attribute counts within a half differ by at most 1.
            for i in range(3):
                counts = Counter(shapes.parse_class_name(n)[i] for n in half)
                assert max(counts.values()) - min(counts.values()) <= 1

    @pytest.mark.parametrize('bad', [3, 0, -1, shapes.MAX_CLASSES + 1])
    def test_invalid_num_classes(self, bad):
        with pytest.raises(ValueError, match='num_classes'):
            shapes.list_class_names(bad)

    def test_num_classes_type(self):
        with pytest.raises(TypeError):
            shapes.list_class_names(40.0)

    def test_parse_and_folder(self):
        assert shapes.parse_class_name('red_striped_circle') == (
            'red', 'striped', 'circle')
        assert shapes.class_folder('red striped circle') == (
            'red_striped_circle')
        with pytest.raises(ValueError):
            shapes.parse_class_name('red circle')
        with pytest.raises(ValueError):
            shapes.parse_class_name('teal plain circle')


class TestRender:

    def test_image_properties(self):
        img = shapes.render_image('blue dotted star', image_size=24)
        assert img.mode == 'RGB'
        assert img.size == (24, 24)

    def test_deterministic_and_seeded(self):

        def pixels(**kwargs) -> np.ndarray:
            return np.asarray(shapes.render_image('red striped circle',
                                                  **kwargs))

        np.testing.assert_array_equal(pixels(seed=1), pixels(seed=1))
        assert not np.array_equal(pixels(seed=1), pixels(seed=2))
        assert not np.array_equal(pixels(index=0), pixels(index=1))
        assert not np.array_equal(pixels(split='train'), pixels(split='test'))
        assert not np.array_equal(
            pixels(domain='target'), pixels(domain='pretrain'))

    def test_shape_colour_visible(self):
        # The dominant saturated colour of a plain shape is its class
        # colour: compare the most saturated pixels with the palette.
        for colour in shapes.COLOURS:
            img = np.asarray(
                shapes.render_image(f'{colour} plain square', 64),
                dtype=float)
            sat = img.max(-1) - img.min(-1)
            mean = img[sat >= np.percentile(sat, 90)].mean(0)
            dists = {
                c: np.linalg.norm(mean - np.array(rgb))
                for c, rgb in shapes.COLOUR_RGB.items()
            }
            assert min(dists, key=dists.get) == colour

    @pytest.mark.parametrize('kwargs', [
        dict(image_size=8),
        dict(seed=-1),
        dict(split='holdout'),
        dict(domain='web'),
        dict(index=-1),
    ])
    def test_invalid(self, kwargs):
        with pytest.raises(ValueError):
            shapes.render_image('red plain circle', **kwargs)


class TestGenerateCoopDataset:

    def test_layout_and_split_format(self, small_dataset):
        out, summary = small_dataset
        n = SMALL['num_classes']
        per_split = dict(
            train=SMALL['train_per_class'],
            val=SMALL['val_per_class'],
            test=SMALL['test_per_class'])
        names = shapes.list_class_names(n)
        assert summary['class_names'] == names
        assert summary['num_base'] == math.ceil(n / 2)
        assert summary['counts'] == {s: c * n for s, c in per_split.items()}

        split = json.loads((out / shapes.SPLIT_FILE).read_text())
        assert list(split) == ['train', 'val', 'test']
        seen_paths = set()
        for name, entries in split.items():
            per_label = Counter()
            label_to_name = defaultdict(set)
            for entry in entries:
                assert isinstance(entry, list) and len(entry) == 3
                rel, label, classname = entry
                assert isinstance(rel, str)
                assert type(label) is int
                assert isinstance(classname, str)
                assert 0 <= label < n
                label_to_name[label].add(classname)
                per_label[label] += 1
                assert rel.split('/')[0] == shapes.class_folder(classname)
                assert rel not in seen_paths
                seen_paths.add(rel)
                path = out / shapes.IMAGE_DIR / rel
                assert path.is_file()
            assert {k: v.pop() for k, v in label_to_name.items()} == dict(
                enumerate(names))
            assert all(len(v) == 0 for v in label_to_name.values())
            assert per_label == {i: per_split[name] for i in range(n)}

        with Image.open(out / shapes.IMAGE_DIR / split['test'][0][0]) as img:
            assert img.mode == 'RGB'
            assert img.size == (SMALL['image_size'], ) * 2

        lines = (out / shapes.CLASSNAMES_FILE).read_text().splitlines()
        assert lines == [f'{shapes.class_folder(c)} {c}' for c in names]

        marker = json.loads((out / shapes.MARKER_FILE).read_text())
        assert marker['format_version'] == shapes.FORMAT_VERSION
        assert marker['arguments'] == dict(SMALL, domain='target')
        # Nothing but the documented files.
        top = {p.name for p in out.iterdir()}
        assert top == {
            shapes.IMAGE_DIR, shapes.SPLIT_FILE, shapes.CLASSNAMES_FILE,
            shapes.MARKER_FILE
        }

    def test_byte_identical(self, small_dataset, tmp_path):
        out, _ = small_dataset
        shapes.generate_coop_dataset(tmp_path / 'again', **SMALL)
        assert read_tree(tmp_path / 'again') == read_tree(out)

    def test_seed_changes_images(self, small_dataset, tmp_path):
        out, _ = small_dataset
        other = tmp_path / 'seed'
        shapes.generate_coop_dataset(other, **dict(SMALL, seed=4))
        a, b = read_tree(out), read_tree(other)
        assert a[shapes.SPLIT_FILE] == b[shapes.SPLIT_FILE]
        pngs = [k for k in a if k.endswith('.png')]
        assert pngs and all(a[k] != b[k] for k in pngs)

    def test_order_independent_images(self, small_dataset, tmp_path):
        # Each image has its own seed: rendering one alone, or inside a
        # dataset with a different class count, gives the same pixels.
        out, summary = small_dataset
        name = summary['class_names'][-1]
        rel = f'{shapes.class_folder(name)}/val_0000.png'
        single = shapes.render_image(
            name,
            image_size=SMALL['image_size'],
            seed=SMALL['seed'],
            split='val',
            index=0)
        with Image.open(out / shapes.IMAGE_DIR / rel) as img:
            np.testing.assert_array_equal(np.asarray(img), np.asarray(single))

        bigger = tmp_path / 'bigger'
        shapes.generate_coop_dataset(bigger, **dict(SMALL, num_classes=9))
        a, b = read_tree(out / 'images'), read_tree(bigger / 'images')
        common = set(a) & set(b)
        assert common
        assert all(a[k] == b[k] for k in common)

    def test_rerun_is_idempotent(self, tmp_path):
        out = tmp_path / 'ds'
        shapes.generate_coop_dataset(out, **SMALL)
        before = read_tree(out)
        shapes.generate_coop_dataset(out, **SMALL)
        assert read_tree(out) == before

    def test_empty_existing_dir_is_fine(self, tmp_path):
        shapes.generate_coop_dataset(tmp_path, **SMALL)
        assert (tmp_path / shapes.SPLIT_FILE).is_file()

    @pytest.mark.slow
    def test_refuses_foreign_dir(self, tmp_path):
        (tmp_path / 'notes.txt').write_text('keep me')
        with pytest.raises(FileExistsError, match=str(tmp_path)):
            shapes.generate_coop_dataset(tmp_path, **SMALL)
        assert [p.name for p in tmp_path.iterdir()] == ['notes.txt']
        assert (tmp_path / 'notes.txt').read_text() == 'keep me'

    def test_refuses_other_arguments(self, tmp_path):
        shapes.generate_coop_dataset(tmp_path, **SMALL)
        before = read_tree(tmp_path)
        with pytest.raises(FileExistsError, match='different settings'):
            shapes.generate_coop_dataset(tmp_path, **dict(SMALL, seed=9))
        assert read_tree(tmp_path) == before

    def test_refuses_other_generator_version(self, tmp_path):
        shapes.generate_coop_dataset(tmp_path, **SMALL)
        marker_path = tmp_path / shapes.MARKER_FILE
        marker = json.loads(marker_path.read_text())
        marker['format_version'] = shapes.FORMAT_VERSION - 1
        marker_path.write_text(json.dumps(marker))
        with pytest.raises(FileExistsError, match='generator version'):
            shapes.generate_coop_dataset(tmp_path, **SMALL)

    def test_refuses_file(self, tmp_path):
        target = tmp_path / 'file'
        target.write_text('x')
        with pytest.raises(FileExistsError, match='not a directory'):
            shapes.generate_coop_dataset(target, **SMALL)

    @pytest.mark.parametrize('kwargs', [
        dict(num_classes=shapes.MAX_CLASSES + 1),
        dict(num_classes=2),
        dict(train_per_class=0),
        dict(val_per_class=-1),
        dict(test_per_class=0),
        dict(image_size=4),
        dict(seed=-3),
        dict(domain='web'),
    ])
    def test_invalid_arguments(self, kwargs, tmp_path):
        with pytest.raises(ValueError):
            shapes.generate_coop_dataset(tmp_path / 'ds',
                                         **dict(SMALL, **kwargs))
        # Validation happens before anything is written.
        assert not (tmp_path / 'ds').exists()

    def test_pretrain_domain(self, small_dataset, tmp_path):
        out, _ = small_dataset
        shifted = tmp_path / 'pretrain'
        shapes.generate_coop_dataset(
            shifted, **dict(SMALL, domain='pretrain'))
        a, b = read_tree(out), read_tree(shifted)
        assert a[shapes.SPLIT_FILE] == b[shapes.SPLIT_FILE]
        pngs = [k for k in a if k.endswith('.png')]
        assert all(a[k] != b[k] for k in pngs)


class TestCaptionPairs:

    @staticmethod
    def parse(caption: str) -> Tuple[int, str]:
        """(template index, class name) of a caption."""
        for i, template in enumerate(shapes.CAPTION_TEMPLATES):
            head, tail = template.split('{}')
            if caption.startswith(head) and caption.endswith(tail):
                name = caption[len(head):len(caption) - len(tail)]
                if name in set(ALL_NAMES):
                    return i, name
        raise AssertionError(f'unparsable caption {caption!r}')

    def test_covers_all_classes_and_templates(self):
        n = 2 * shapes.MAX_CLASSES
        pairs = shapes.generate_caption_pairs(n, image_size=16, seed=0)
        assert len(pairs) == n
        parsed = [self.parse(c) for _, c in pairs]
        names = Counter(name for _, name in parsed)
        assert set(names) == set(ALL_NAMES)
        assert set(names.values()) == {2}
        templates = Counter(t for t, _ in parsed)
        assert len(templates) >= 4
        for img, _ in pairs:
            assert img.mode == 'RGB' and img.size == (16, 16)

    def test_small_n_distinct(self):
        pairs = shapes.generate_caption_pairs(20, image_size=16, seed=1)
        names = [self.parse(c)[1] for _, c in pairs]
        assert len(set(names)) == 20

    def test_deterministic(self):
        a = shapes.generate_caption_pairs(12, image_size=16, seed=5)
        b = list(shapes.iter_caption_pairs(12, image_size=16, seed=5))
        c = shapes.generate_caption_pairs(12, image_size=16, seed=6)
        assert [x[1] for x in a] == [x[1] for x in b]
        for (ia, _), (ib, _) in zip(a, b):
            assert ia.tobytes() == ib.tobytes()
        assert [x[1] for x in a] != [x[1] for x in c]

    def test_make_caption(self):
        assert shapes.make_caption('red plain circle') == (
            'a photo of a red plain circle.')
        assert shapes.make_caption('red plain circle', 1) == (
            'a red plain circle on a noisy background.')
        rng = np.random.default_rng(0)
        caps = {shapes.make_caption('red plain circle', rng)
                for _ in range(50)}
        assert len(caps) > 3

    @pytest.mark.parametrize('n', [0, -2])
    def test_invalid_n(self, n):
        with pytest.raises(ValueError):
            shapes.generate_caption_pairs(n)


class TestCLI:

    def run_cli(self, *args: str) -> subprocess.CompletedProcess:
        # A foreign working directory: the script must find the package
        # from its own location.
        return subprocess.run([sys.executable, str(CLI), *args],
                              capture_output=True,
                              text=True,
                              cwd=os.sep,
                              timeout=120)

    @pytest.mark.slow
    def test_writes_same_dataset(self, small_dataset, tmp_path, capsys):
        out, _ = small_dataset
        target = tmp_path / 'cli'
        args = [
            str(target), '--num-classes',
            str(SMALL['num_classes']), '--train-per-class',
            str(SMALL['train_per_class']), '--val-per-class',
            str(SMALL['val_per_class']), '--test-per-class',
            str(SMALL['test_per_class']), '--image-size',
            str(SMALL['image_size']), '--seed',
            str(SMALL['seed'])
        ]
        result = self.run_cli(*args)
        assert result.returncode == 0, result.stderr
        assert str(target) in result.stdout
        assert osp.join(str(target), shapes.SPLIT_FILE) in result.stdout
        assert read_tree(target) == read_tree(out)

        # Same arguments again: fine; other arguments: refused (in this
        # process: the script's own start is proven above).
        main = load_tool('misc/generate_shapes_dataset.py').main
        assert main(args) == 0
        capsys.readouterr()
        assert main([*args[:-1], '7']) == 1
        assert str(target) in capsys.readouterr().err

    def test_refuses_foreign_dir(self, tmp_path, capsys):
        # In this process: the script's own start is proven above.
        (tmp_path / 'data.csv').write_text('a,b\n')
        main = load_tool('misc/generate_shapes_dataset.py').main
        assert main([str(tmp_path), '--num-classes', '4']) == 1
        assert str(tmp_path) in capsys.readouterr().err
        assert [p.name for p in tmp_path.iterdir()] == ['data.csv']


def test_unlabeled_folder_holds_train_stream_images(tmp_path):
    """The unlabeled images are the CoOp train stream's, beyond its split
    when first_index = train_per_class, with the class names beside."""
    coop = tmp_path / 'coop'
    shapes.generate_coop_dataset(coop, num_classes=6, train_per_class=3,
                                 val_per_class=1, test_per_class=1)
    first = tmp_path / 'first'
    summary = shapes.generate_unlabeled_images(first, num_classes=6,
                                               per_class=3)
    assert summary['num_images'] == 18
    names = (first / 'classes.txt').read_text().splitlines()
    assert names == shapes.list_class_names(6)

    def pixels(folder, pattern):
        return {
            np.asarray(Image.open(p)).tobytes()
            for p in sorted(folder.glob(pattern))
        }

    assert pixels(first / 'images', '*.png') == pixels(
        coop / 'images', '*/train_*.png')
    beyond = tmp_path / 'beyond'
    shapes.generate_unlabeled_images(beyond, num_classes=6, per_class=2,
                                     first_index=3)
    new = pixels(beyond / 'images', '*.png')
    assert len(new) == 12 and not new & pixels(coop / 'images', '*.png')
    with pytest.raises(ValueError, match='first_index'):
        shapes.generate_unlabeled_images(tmp_path / 'x', first_index=-1)
