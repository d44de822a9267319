"""NestedSubset: seeded, nested fractions and counts of any dataset."""
import math
import random
from collections import Counter

import pytest
from mmengine.dataset import ConcatDataset

from mmpromptkd.datasets import NestedSubset, UnlabeledImages
from synthetic_shapes import generate_coop_dataset
from unlabeled_helpers import write_images


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('nested') / 'shapes'
    generate_coop_dataset(
        root, num_classes=6, train_per_class=8, val_per_class=1,
        test_per_class=1)
    return str(root)


def _coop(root):
    return dict(type='SyntheticShapes', data_root=root, split='train')


def _paths(ds):
    return [ds.get_data_info(i)['img_path'] for i in range(len(ds))]


def _labels(ds):
    return [ds.get_data_info(i)['gt_label'] for i in range(len(ds))]


@pytest.mark.parametrize('small, large', [(0.125, 0.25), (0.25, 0.5),
                                          (0.5, 1.0)])
def test_fractions_nest_per_class(shapes, small, large):
    a = NestedSubset(_coop(shapes), fraction=small, seed=2)
    b = NestedSubset(_coop(shapes), fraction=large, seed=2)
    assert set(_paths(a)) <= set(_paths(b))
    counts = Counter(_labels(a))
    assert counts == {c: math.ceil(small * 8) for c in range(6)}


def test_counts_nest_and_follow_an_independent_rule(shapes):
    full = NestedSubset(_coop(shapes), fraction=1.0)
    assert sorted(_paths(full)) == sorted(
        [full.get_data_info(i)['img_path'] for i in range(48)])
    three = NestedSubset(_coop(shapes), count=3, seed=5)
    five = NestedSubset(_coop(shapes), count=5, seed=5)
    assert set(_paths(three)) <= set(_paths(five))
    # The rule written out again: per class, sorted paths shuffled by
    # Random(f'{seed}-{label}'), the first k kept.
    by_class = {}
    for i in range(len(full)):
        info = full.get_data_info(i)
        by_class.setdefault(info['gt_label'], []).append(info['img_path'])
    expected = set()
    for label, paths in by_class.items():
        paths = sorted(paths)
        random.Random(f'5-{label}').shuffle(paths)
        expected |= set(paths[:3])
    assert set(_paths(three)) == expected
    # Labels and order are those of the wrapped dataset.
    assert _labels(three) == sorted(_labels(three))


def test_seeds_differ_and_order_of_listing_does_not_matter(tmp_path):
    names = [f'{i:02d}.png' for i in range(40)]
    write_images(tmp_path, names)
    (tmp_path / 'fwd.txt').write_text('\n'.join(names))
    (tmp_path / 'rev.txt').write_text('\n'.join(reversed(names)))

    def subset(listing, seed):
        ds = UnlabeledImages(file_list=str(tmp_path / listing))
        return set(_paths(NestedSubset(ds, count=10, seed=seed)))

    assert subset('fwd.txt', 1) == subset('rev.txt', 1)
    assert subset('fwd.txt', 1) != subset('fwd.txt', 2)
    assert len(subset('fwd.txt', 1)) == 10


def test_unlabeled_counts_are_global_and_bounded(tmp_path):
    write_images(tmp_path, [f'{i}.png' for i in range(7)])
    ds = UnlabeledImages(data_root=str(tmp_path), classes=['a'])
    assert len(NestedSubset(ds, fraction=0.5)) == 4
    assert NestedSubset(ds, count=2).metainfo['classes'] == ('a', )
    with pytest.raises(ValueError, match='count=8 but UnlabeledImages has '
                       'only 7 images'):
        NestedSubset(ds, count=8)
    assert 'gt_label' not in NestedSubset(ds, count=2).get_data_info(0)


def test_short_classes_warn(shapes):
    with pytest.warns(UserWarning, match='6 class.* fewer than 9 images'):
        assert len(NestedSubset(_coop(shapes), count=9)) == 48


@pytest.mark.parametrize('kwargs, match', [
    (dict(), 'exactly one of fraction and count'),
    (dict(fraction=0.5, count=2), 'exactly one'),
    (dict(fraction=0.0), r'fraction must be in \(0, 1\]'),
    (dict(fraction=1.5), 'fraction must be'),
    (dict(count=0), 'count must be an int >= 1'),
    (dict(count=True), 'count must be'),
])
def test_arguments_are_checked(shapes, kwargs, match):
    with pytest.raises(ValueError, match=match):
        NestedSubset(_coop(shapes), **kwargs)


def test_options_the_subset_would_ignore_are_refused(shapes):
    """The subset runs the wrapped dataset's pipeline: no pipeline of its
    own is silently dropped."""
    with pytest.raises(TypeError, match='pipeline'):
        NestedSubset(_coop(shapes), fraction=0.5, pipeline=[])


def test_a_subset_concatenates_and_keeps_the_pipeline(shapes, tmp_path):
    write_images(tmp_path, ['x.png', 'y.png'])
    pipeline = [dict(type='mmpromptkd.LoadImageFromFileSafe'),
                dict(type='PackInputs')]
    coop = NestedSubset(dict(_coop(shapes), pipeline=pipeline), count=1)
    extra = UnlabeledImages(data_root=str(tmp_path), pipeline=pipeline)
    both = ConcatDataset([coop, extra],
                         ignore_keys=['classes', 'num_base_classes',
                                      'subset'])
    assert len(both) == 8
    assert both.metainfo['classes'] == coop.metainfo['classes']
    assert tuple(both[0]['inputs'].shape) == (3, 32, 32)
    assert 'gt_label' not in both[7]['data_samples']
    mixed = NestedSubset(both, fraction=0.5)
    assert len(mixed) == 6 + 1
    with pytest.raises(ValueError, match='give a fraction'):
        NestedSubset(both, count=1)


def test_empty_class_check_sees_labels_of_subsets_only(shapes, tmp_path):
    from mmpromptkd.engine.hooks.empty_class_check_hook import \
        find_empty_classes
    write_images(tmp_path, ['x.png'])
    unlabeled = UnlabeledImages(data_root=str(tmp_path), classes=['a', 'b'])
    assert find_empty_classes(unlabeled) == []
    assert find_empty_classes(NestedSubset(unlabeled, count=1)) == []
    subset = NestedSubset(_coop(shapes), count=1, serialize_data=False)
    assert find_empty_classes(subset) == []
    subset.data_list = [d for d in subset.data_list if d['gt_label'] != 2]
    assert find_empty_classes(subset) == [
        f"{subset.metainfo['classes'][2]!r} (label 2)"
    ]
