"""Tests of the CoOp-format datasets on mini folder trees built in tmp_path."""
import json
import os
import os.path as osp
import random
from typing import Dict, List, Tuple
from unittest.mock import MagicMock

import numpy as np
import pytest
from PIL import Image

import mmpromptkd  # noqa: F401  (registers everything)
from mmpromptkd.datasets import (
    CoOpDTD, CoOpSUN397, CoOpUCF101, CoOpCaltech101, CoOpDataset, CoOpEuroSAT,
    CoOpFGVCAircraft, CoOpFood101, CoOpImageNet, CoOpImageNetA, CoOpImageNetR,
    CoOpImageNetSketch, CoOpImageNetV2, CoOpOxfordFlowers, CoOpOxfordPets,
    CoOpStanfordCars)
from mmpromptkd.datasets.utils import sample_few_shot, sample_few_shot_dassl
from mmpromptkd.registry import DATASETS

# The documented layout of each JSON-split dataset: folder, image folder and
# split file, written out here rather than read from the classes.
JSON_LAYOUTS = {
    CoOpCaltech101:
    ('caltech-101', '101_ObjectCategories', 'split_zhou_Caltech101.json'),
    CoOpOxfordPets: ('oxford_pets', 'images', 'split_zhou_OxfordPets.json'),
    CoOpStanfordCars: ('stanford_cars', '', 'split_zhou_StanfordCars.json'),
    CoOpOxfordFlowers:
    ('oxford_flowers', 'jpg', 'split_zhou_OxfordFlowers.json'),
    CoOpFood101: ('food-101', 'images', 'split_zhou_Food101.json'),
    CoOpSUN397: ('sun397', 'SUN397', 'split_zhou_SUN397.json'),
    CoOpDTD: ('dtd', 'images', 'split_zhou_DescribableTextures.json'),
    CoOpEuroSAT: ('eurosat', '2750', 'split_zhou_EuroSAT.json'),
    CoOpUCF101: ('ucf101', 'UCF-101-midframes', 'split_zhou_UCF101.json'),
}

CLASSNAMES = ['banded', 'blotchy', 'braided_hair', 'bubbly', 'bumpy']
# Images per class and split; class 4 has a single train image so that the
# few-shot cap is exercised, class 2 a single val image.
COUNTS = {
    'train': [6, 5, 4, 3, 1],
    'val': [5, 4, 1, 2, 3],
    'test': [2, 3, 2, 2, 4],
}
IMG_W, IMG_H = 12, 10

# Most draws here have short classes on purpose; one test checks the warning.
pytestmark = pytest.mark.filterwarnings(
    'ignore:.*keep all of them:UserWarning')


@pytest.fixture(autouse=True)
def fast_serialisation(monkeypatch):
    """Skip the ``gc.collect`` of mmengine's sample serialisation.

    With torch loaded it costs about 0.3 s per dataset and has no effect on
    what is tested.
    """
    import mmengine.dataset.base_dataset as mmengine_base_dataset
    monkeypatch.setattr(mmengine_base_dataset.gc, 'collect', lambda: 0)


def write_image(path: str, value: int = 0) -> None:
    """Write a tiny RGB image; the format follows the extension."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    arr = np.full((IMG_H, IMG_W, 3), value % 256, dtype=np.uint8)
    Image.fromarray(arr).save(path)


def make_json_dataset(root: str, cls: type) -> Dict[str, List[list]]:
    """Build the tree of a JSON-split dataset and return its split dict."""
    dataset_dir, image_dir, split_file = JSON_LAYOUTS[cls]
    image_root = osp.join(root, dataset_dir, image_dir)
    split: Dict[str, List[list]] = {}
    for name, counts in COUNTS.items():
        entries = []
        for label, count in enumerate(counts):
            cname = CLASSNAMES[label]
            for i in range(count):
                relpath = f'{cname}/{name}_{i:02d}.jpg'
                write_image(osp.join(image_root, relpath), label * 40 + i)
                entries.append([relpath, label, cname])
        # The split file is not sorted: parsing must not rely on order.
        random.Random(name).shuffle(entries)
        split[name] = entries
    with open(osp.join(root, dataset_dir, split_file), 'w') as f:
        json.dump(split, f)
    return split


@pytest.fixture
def dtd_root(tmp_path) -> str:
    root = str(tmp_path / 'data')
    make_json_dataset(root, CoOpDTD)
    return root


def samples(ds) -> List[Tuple[str, int]]:
    return [(ds[i]['img_path'], ds[i]['gt_label']) for i in range(len(ds))]


def infos(ds) -> List[Tuple[str, int]]:
    return [(d['img_path'], d['gt_label'])
            for d in (ds.get_data_info(i) for i in range(len(ds)))]


class TestJsonSplitDatasets:

    @pytest.mark.parametrize('cls', list(JSON_LAYOUTS))
    @pytest.mark.parametrize('split', ['train', 'val', 'test'])
    def test_parse(self, tmp_path, cls, split):
        root = str(tmp_path / 'data')
        content = make_json_dataset(root, cls)
        dataset_dir, image_dir, _ = JSON_LAYOUTS[cls]
        ds = cls(data_root=root, split=split)

        assert len(ds) == sum(COUNTS[split])
        assert ds.metainfo['classes'] == tuple(CLASSNAMES)
        assert ds.metainfo['subset'] == 'all'
        assert ds.metainfo['num_base_classes'] == 3
        image_root = osp.join(root, dataset_dir, image_dir)
        expected = [(osp.join(image_root, rel), label)
                    for rel, label, _ in content[split]]
        assert infos(ds) == expected
        assert all(osp.isfile(p) for p, _ in infos(ds))
        np.testing.assert_array_equal(ds.get_gt_labels(),
                                      [lab for _, lab in expected])
        assert np.bincount(ds.get_gt_labels()).tolist() == COUNTS[split]

    def test_base_novel_odd_class_count(self, dtd_root):
        base = CoOpDTD(data_root=dtd_root, split='test', subset='base')
        novel = CoOpDTD(data_root=dtd_root, split='test', subset='novel')
        full = CoOpDTD(data_root=dtd_root, split='test', subset='all')

        assert base.metainfo['classes'] == ('banded', 'blotchy',
                                            'braided_hair')
        assert novel.metainfo['classes'] == ('bubbly', 'bumpy')
        assert base.metainfo['num_base_classes'] == 3
        assert novel.metainfo['num_base_classes'] == 0
        assert len(base) == 2 + 3 + 2
        assert len(novel) == 2 + 4
        assert sorted(set(base.get_gt_labels())) == [0, 1, 2]
        assert sorted(set(novel.get_gt_labels())) == [0, 1]

        # Base keeps labels; novel shifts them by the base count.
        full_map = dict(infos(full))
        for path, label in infos(base):
            assert full_map[path] == label
        for path, label in infos(novel):
            assert full_map[path] == label + 3
            assert novel.metainfo['classes'][label] in path

    def test_num_base_classes_argument(self, dtd_root):
        novel = CoOpDTD(
            data_root=dtd_root,
            split='train',
            subset='novel',
            num_base_classes=1)
        assert novel.metainfo['classes'] == tuple(CLASSNAMES[1:])
        assert np.bincount(novel.get_gt_labels()).tolist() == [5, 4, 3, 1]
        with pytest.raises(ValueError, match='num_base_classes'):
            CoOpDTD(data_root=dtd_root, num_base_classes=6)
        with pytest.raises(ValueError, match="'novel' subset is empty"):
            CoOpDTD(data_root=dtd_root, subset='novel', num_base_classes=5)

    def test_generic_coop_dataset(self, dtd_root):
        ds = CoOpDataset(
            data_root=dtd_root,
            dataset_dir='dtd',
            image_dir='images',
            split_file='split_zhou_DescribableTextures.json',
            split='val')
        assert len(ds) == sum(COUNTS['val'])
        with pytest.raises(ValueError, match='split_file'):
            CoOpDataset(data_root=dtd_root, dataset_dir='dtd')

    def test_lazy_init_has_classes(self, dtd_root):
        ds = CoOpDTD(data_root=dtd_root, subset='novel', lazy_init=True)
        assert ds.metainfo['classes'] == ('bubbly', 'bumpy')
        assert len(ds) == 3 + 1

    def test_pipeline_by_bare_name(self, dtd_root):
        ds = CoOpDTD(
            data_root=dtd_root,
            split='test',
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='PackInputs')])
        out = ds[0]
        assert tuple(out['inputs'].shape) == (3, IMG_H, IMG_W)
        assert out['data_samples'].gt_label.item() == infos(ds)[0][1]


class TestFewShot:

    def test_counts_and_val_cap(self, dtd_root):
        train = CoOpDTD(data_root=dtd_root, num_shots=2, cache_few_shot=False)
        assert np.bincount(train.get_gt_labels()).tolist() == [2, 2, 2, 2, 1]
        val = CoOpDTD(
            data_root=dtd_root, split='val', num_shots=8, cache_few_shot=False)
        # val keeps min(8, 4) per class, or all of a smaller class
        assert np.bincount(val.get_gt_labels()).tolist() == [4, 4, 1, 2, 3]
        test = CoOpDTD(data_root=dtd_root, split='test', num_shots=1)
        assert np.bincount(test.get_gt_labels()).tolist() == COUNTS['test']
        assert not osp.exists(osp.join(dtd_root, 'dtd', 'split_fewshot'))

    def test_short_class_warns(self, dtd_root):
        with pytest.warns(UserWarning, match=r"fewer than 3 .*'bumpy' \(1\)"):
            CoOpDTD(data_root=dtd_root, num_shots=3, cache_few_shot=False)

    def test_deterministic_and_seed_dependent(self, dtd_root):
        kw = dict(data_root=dtd_root, num_shots=2, cache_few_shot=False)
        a = infos(CoOpDTD(seed=1, **kw))
        b = infos(CoOpDTD(seed=1, **kw))
        c = infos(CoOpDTD(seed=2, **kw))
        assert a == b
        assert a != c
        # Sorted by label then path.
        assert a == sorted(a, key=lambda x: (x[1], x[0]))

    def test_rule_ignores_input_order(self):
        records = [(f'c{lab}/{i}.jpg', lab) for lab in range(4)
                   for i in range(7)]
        shuffled = list(records)
        random.Random(0).shuffle(shuffled)
        got, short = sample_few_shot(records, 3, seed=5)
        assert sample_few_shot(shuffled, 3, seed=5) == (got, short)
        for draw in (lambda: sample_few_shot(records, 0, seed=5),
                     lambda: sample_few_shot_dassl([(records, 0)], seed=5)):
            with pytest.raises(ValueError, match='num_shots must be >= 1'):
                draw()
        assert short == {}
        assert [lab for _, lab in got] == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
        # One class's draw does not depend on the other classes.
        only_two = [r for r in records if r[1] == 2]
        assert sample_few_shot(only_two, 3, seed=5)[0] == got[6:9]

    def test_cache_written_equal_to_fresh_and_reused(self, dtd_root):
        cache = osp.join(dtd_root, 'dtd', 'split_fewshot',
                         'shot_2-seed_1.json')
        first = CoOpDTD(data_root=dtd_root, num_shots=2, seed=1)
        assert osp.isfile(cache)
        fresh_train = CoOpDTD(
            data_root=dtd_root, num_shots=2, seed=1, cache_few_shot=False)
        fresh_val = CoOpDTD(
            data_root=dtd_root,
            split='val',
            num_shots=2,
            seed=1,
            cache_few_shot=False)
        image_root = osp.join(dtd_root, 'dtd', 'images')
        with open(cache) as f:
            content = json.load(f)
        assert set(content) == {'train', 'val'}
        for key, ds in (('train', fresh_train), ('val', fresh_val)):
            assert [[osp.join(image_root, rel), lab]
                    for rel, lab, _ in content[key]] == \
                [list(x) for x in infos(ds)]
            assert all(CLASSNAMES[lab] == cname
                       for _, lab, cname in content[key])
        assert infos(first) == infos(fresh_train)

        # The cache file wins over a fresh draw: edit it (another valid
        # draw: the same images in another order) and rebuild.
        content['train'] = content['train'][::-1]
        with open(cache, 'w') as f:
            json.dump(content, f)
        mtime = os.stat(cache).st_mtime_ns
        reused = CoOpDTD(data_root=dtd_root, num_shots=2, seed=1)
        assert infos(reused) == infos(fresh_train)[::-1]
        # Subsets are taken from the same cached draw.
        novel_val = CoOpDTD(
            data_root=dtd_root,
            split='val',
            subset='novel',
            num_shots=2,
            seed=1)
        assert [(p, lab + 3) for p, lab in infos(novel_val)] == \
            [x for x in infos(fresh_val) if x[1] >= 3]
        assert os.stat(cache).st_mtime_ns == mtime
        assert os.listdir(osp.dirname(cache)) == ['shot_2-seed_1.json']

    def test_unwritable_root_is_not_cached(self, dtd_root, monkeypatch):
        import tempfile

        def refuse(*args, **kwargs):
            raise PermissionError('read-only file system')

        monkeypatch.setattr(tempfile, 'mkstemp', refuse)
        monkeypatch.setattr(os, 'makedirs', refuse)
        ds = CoOpDTD(data_root=dtd_root, num_shots=2)
        assert len(ds) == 9
        assert not osp.exists(osp.join(dtd_root, 'dtd', 'split_fewshot'))

    @pytest.mark.parametrize('edit, match', [
        ('test_images', 'not an image of the split'),
        ('swap_labels', 'has label'),
        ('duplicate', 'listed twice'),
        ('fewer_shots', 'a draw of 2 shots has 2'),
    ])
    def test_a_cache_must_be_a_draw_of_the_split(self, dtd_root, edit,
                                                 match):
        """Test leakage, swapped labels, repeated and missing shots."""
        cache = osp.join(dtd_root, 'dtd', 'split_fewshot',
                         'shot_2-seed_1.json')
        CoOpDTD(data_root=dtd_root, num_shots=2, seed=1)
        with open(cache) as f:
            content = json.load(f)
        train = content['train']
        with open(osp.join(dtd_root, 'dtd', 'split_zhou_DescribableTextures'
                           '.json')) as f:
            test = json.load(f)['test']
        if edit == 'test_images':
            content['train'] = test[:len(train)]
        elif edit == 'swap_labels':
            first = next(i for i, t in enumerate(train) if t[1] != train[0][1])
            train[0][0], train[first][0] = train[first][0], train[0][0]
        elif edit == 'duplicate':
            train[1] = list(train[0])
        else:
            content['train'] = train[1:]
        with open(cache, 'w') as f:
            json.dump(content, f)
        with pytest.raises(ValueError, match=match) as e:
            CoOpDTD(data_root=dtd_root, num_shots=2, seed=1)
        assert cache in str(e.value) and 'delete it' in str(e.value)

    def test_bad_cache_is_reported(self, dtd_root):
        cache = osp.join(dtd_root, 'dtd', 'split_fewshot',
                         'shot_2-seed_1.json')
        os.makedirs(osp.dirname(cache))
        with open(cache, 'w') as f:
            json.dump({'train': [['x.jpg', 9, 'banded']], 'val': []}, f)
        with pytest.raises(ValueError, match='delete') as e:
            CoOpDTD(data_root=dtd_root, num_shots=2)
        assert cache in str(e.value)
        with open(cache, 'w') as f:
            f.write('{"train": [')
        with pytest.raises(ValueError, match='line 1') as e:
            CoOpDTD(data_root=dtd_root, num_shots=2)
        assert cache in str(e.value)


VARIANTS = ['707-320', 'A300B4', 'Boeing 717', 'Cessna 172', 'DC-10']


def make_fgvc(root: str) -> Dict[str, List[Tuple[str, int]]]:
    """Build an FGVC-Aircraft tree; return ``(image id, label)`` per split."""
    folder = osp.join(root, 'fgvc_aircraft')
    os.makedirs(folder)
    with open(osp.join(folder, 'variants.txt'), 'w') as f:
        f.write('\n'.join(VARIANTS) + '\n')
    expected = {}
    n = 0
    for split, counts in COUNTS.items():
        lines, items = [], []
        for label, count in enumerate(counts):
            for _ in range(count):
                image_id = f'{1000000 + n:07d}'
                n += 1
                write_image(osp.join(folder, 'images', image_id + '.jpg'), n)
                lines.append(f'{image_id} {VARIANTS[label]}')
                items.append((image_id, label))
        with open(osp.join(folder, f'images_variant_{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        expected[split] = items
    return expected


class TestFGVCAircraft:

    @pytest.mark.parametrize('split', ['train', 'val', 'test'])
    def test_parse(self, tmp_path, split):
        root = str(tmp_path)
        expected = make_fgvc(root)
        ds = CoOpFGVCAircraft(data_root=root, split=split)
        assert ds.metainfo['classes'] == tuple(VARIANTS)
        image_root = osp.join(root, 'fgvc_aircraft', 'images')
        assert infos(ds) == [(osp.join(image_root, i + '.jpg'), lab)
                             for i, lab in expected[split]]

    def test_subset_and_few_shot(self, tmp_path):
        root = str(tmp_path)
        make_fgvc(root)
        novel = CoOpFGVCAircraft(data_root=root, split='test', subset='novel')
        assert novel.metainfo['classes'] == ('Cessna 172', 'DC-10')
        assert np.bincount(novel.get_gt_labels()).tolist() == [2, 4]
        few = CoOpFGVCAircraft(data_root=root, num_shots=4, seed=3)
        assert np.bincount(few.get_gt_labels()).tolist() == [4, 4, 4, 3, 1]
        assert osp.isfile(
            osp.join(root, 'fgvc_aircraft', 'split_fewshot',
                     'shot_4-seed_3.json'))

    def test_errors(self, tmp_path):
        root = str(tmp_path)
        make_fgvc(root)
        lst = osp.join(root, 'fgvc_aircraft', 'images_variant_val.txt')
        with open(lst, 'a') as f:
            f.write('1234567 Boeing 999\n')
        with pytest.raises(ValueError, match='not listed') as e:
            CoOpFGVCAircraft(data_root=root, split='val')
        assert lst in str(e.value) and 'Boeing 999' in str(e.value)
        with open(lst, 'w') as f:
            f.write('1234567\n')
        with pytest.raises(ValueError, match='line 1') as e:
            CoOpFGVCAircraft(data_root=root, split='val')
        assert lst in str(e.value)
        os.remove(lst)
        with pytest.raises(FileNotFoundError) as e:
            CoOpFGVCAircraft(data_root=root, split='test')
        assert lst in str(e.value) and 'variants.txt' in str(e.value)


WNIDS = ['n01440764', 'n01443537', 'n01484850', 'n01491361', 'n01494475']
IMAGENET_NAMES = [
    'tench', 'goldfish', 'great white shark', 'tiger shark', 'hammerhead shark'
]


def write_classnames(path: str, names: List[str] = IMAGENET_NAMES) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(''.join(f'{w} {n}\n' for w, n in zip(WNIDS, names)))


def make_class_folders(root: str, folders: List[str], count_of) -> None:
    # Create in reverse order: listing must sort, not trust the file system.
    for k, folder in reversed(list(enumerate(folders))):
        for i in reversed(range(count_of(k))):
            write_image(osp.join(root, folder, f'img_{i:02d}.jpg'), i)


def make_imagenet(root: str) -> None:
    write_classnames(osp.join(root, 'imagenet', 'classnames.txt'))
    for split in ('train', 'val'):
        make_class_folders(
            osp.join(root, 'imagenet', 'images', split),
            WNIDS,
            lambda k, split=split: COUNTS[split][k])


class TestImageNet:

    def test_train_and_val_as_test(self, tmp_path):
        root = str(tmp_path)
        make_imagenet(root)
        train = CoOpImageNet(data_root=root, split='train')
        assert train.metainfo['classes'] == tuple(IMAGENET_NAMES)
        assert train.metainfo['imagenet_class_indices'] == (0, 1, 2, 3, 4)
        assert np.bincount(train.get_gt_labels()).tolist() == COUNTS['train']
        first = osp.join(root, 'imagenet', 'images', 'train', WNIDS[0],
                         'img_00.jpg')
        assert infos(train)[:2] == [(first, 0), (first.replace('_00',
                                                               '_01'), 0)]
        val = CoOpImageNet(data_root=root, split='val', num_shots=1)
        test = CoOpImageNet(data_root=root, split='test')
        # val is the official validation set, not few-shot sampled
        assert infos(val) == infos(test)
        assert np.bincount(test.get_gt_labels()).tolist() == COUNTS['val']

    def test_subset_and_few_shot(self, tmp_path):
        root = str(tmp_path)
        make_imagenet(root)
        novel = CoOpImageNet(
            data_root=root, split='train', subset='novel', num_shots=2)
        assert novel.metainfo['classes'] == ('tiger shark', 'hammerhead shark')
        assert novel.metainfo['imagenet_class_indices'] == (3, 4)
        assert np.bincount(novel.get_gt_labels()).tolist() == [2, 1]
        with open(
                osp.join(root, 'imagenet', 'split_fewshot',
                         'shot_2-seed_1.json')) as f:
            assert set(json.load(f)) == {'train'}

    def test_errors(self, tmp_path):
        root = str(tmp_path)
        make_imagenet(root)
        missing = osp.join(root, 'imagenet', 'images', 'train', WNIDS[2])
        for name in os.listdir(missing):
            os.remove(osp.join(missing, name))
        os.rmdir(missing)
        with pytest.raises(FileNotFoundError) as e:
            CoOpImageNet(data_root=root, split='train')
        assert missing in str(e.value)
        cn = osp.join(root, 'imagenet', 'classnames.txt')
        with open(cn, 'a') as f:
            f.write('n09999999\n')
        with pytest.raises(ValueError, match='line 6') as e:
            CoOpImageNet(data_root=root, split='test')
        assert cn in str(e.value)
        os.remove(cn)
        with pytest.raises(FileNotFoundError) as e:
            CoOpImageNet(data_root=root, split='test')
        assert cn in str(e.value)


class TestImageNetVariants:

    def test_v2_folders_by_index_and_fallback_classnames(self, tmp_path):
        root = str(tmp_path)
        write_classnames(osp.join(root, 'imagenet', 'classnames.txt'))
        image_root = osp.join(root, 'imagenetv2',
                              'imagenetv2-matched-frequency-format-val')
        make_class_folders(image_root, [str(i) for i in range(5)],
                           lambda k: k + 1)
        ds = CoOpImageNetV2(data_root=root, split='test')
        assert ds.metainfo['classes'] == tuple(IMAGENET_NAMES)
        assert ds.metainfo['imagenet_class_indices'] == (0, 1, 2, 3, 4)
        assert np.bincount(ds.get_gt_labels()).tolist() == [1, 2, 3, 4, 5]
        assert infos(ds)[0] == (osp.join(image_root, '0', 'img_00.jpg'), 0)

        # The variant's own classnames.txt takes precedence.
        own = [n.upper() for n in IMAGENET_NAMES]
        write_classnames(osp.join(root, 'imagenetv2', 'classnames.txt'), own)
        # split defaults to 'test' for a test-only dataset
        own_ds = CoOpImageNetV2(data_root=root)
        assert own_ds.split == 'test'
        assert own_ds.metainfo['classes'] == tuple(own)

    def test_sketch(self, tmp_path):
        root = str(tmp_path)
        write_classnames(osp.join(root, 'imagenet', 'classnames.txt'))
        make_class_folders(
            osp.join(root, 'imagenet-sketch', 'images'), WNIDS, lambda k: 2)
        ds = CoOpImageNetSketch(data_root=root, split='test', subset='base')
        assert ds.metainfo['classes'] == tuple(IMAGENET_NAMES[:3])
        assert ds.metainfo['imagenet_class_indices'] == (0, 1, 2)
        assert infos(ds)[-1] == (osp.join(root, 'imagenet-sketch', 'images',
                                          WNIDS[2], 'img_01.jpg'), 2)

    @pytest.mark.parametrize('cls,folder', [
        (CoOpImageNetA, ('imagenet-adversarial', 'imagenet-a')),
        (CoOpImageNetR, ('imagenet-rendition', 'imagenet-r')),
    ])
    def test_present_classes_only(self, tmp_path, cls, folder):
        root = str(tmp_path)
        write_classnames(osp.join(root, 'imagenet', 'classnames.txt'))
        image_root = osp.join(root, *folder)
        present = [WNIDS[4], WNIDS[1], WNIDS[3]]
        make_class_folders(image_root, present, lambda k: 3 - k)
        ds = DATASETS.build(
            dict(type=cls.__name__, data_root=root, split='test'))
        assert ds.metainfo['classes'] == ('goldfish', 'tiger shark',
                                          'hammerhead shark')
        assert ds.metainfo['imagenet_class_indices'] == (1, 3, 4)
        # labels follow classnames.txt order: n01443537 has 2 images
        assert np.bincount(ds.get_gt_labels()).tolist() == [2, 1, 3]
        assert infos(ds)[0] == (osp.join(image_root, WNIDS[1],
                                         'img_00.jpg'), 0)

        with pytest.raises(
                ValueError,
                match="test-only: split must be "
                "'test', got 'train'"):
            cls(data_root=root, split='train')
        os.makedirs(osp.join(image_root, 'n00000000'))
        with pytest.raises(ValueError, match='n00000000') as e:
            cls(data_root=root, split='test')
        assert image_root in str(e.value)


class TestRegistry:

    def test_build_from_our_registry(self, dtd_root):
        ds = DATASETS.build(
            dict(
                type='CoOpDTD',
                data_root=dtd_root,
                split='test',
                subset='base'))
        assert isinstance(ds, CoOpDTD)
        assert len(ds) == 7

    def test_build_from_mmpretrain_scope(self, dtd_root):
        from mmengine.registry import DATASETS as ROOT_DATASETS
        from mmengine.registry import DefaultScope
        from mmpretrain.registry import DATASETS as MMPRETRAIN_DATASETS
        cfg = dict(type='mmpromptkd.CoOpDTD', data_root=dtd_root, split='val')
        ds = MMPRETRAIN_DATASETS.build(cfg)
        assert isinstance(ds, CoOpDTD) and len(ds) == sum(COUNTS['val'])
        # An mmpretrain runner builds from the root with scope 'mmpretrain'.
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            assert isinstance(ROOT_DATASETS.build(dict(cfg)), CoOpDTD)

    def test_all_classes_registered(self):
        for cls in list(JSON_LAYOUTS) + [
                CoOpDataset, CoOpFGVCAircraft, CoOpImageNet, CoOpImageNetV2,
                CoOpImageNetSketch, CoOpImageNetA, CoOpImageNetR
        ]:
            assert DATASETS.get(cls.__name__) is cls


class TestErrors:

    def test_missing_root_and_folders(self, tmp_path):
        root = str(tmp_path / 'nowhere')
        with pytest.raises(FileNotFoundError) as e:
            CoOpDTD(data_root=root)
        msg = str(e.value)
        assert root in msg and 'docs/datasets.md' in msg
        assert osp.join(root, 'dtd', 'split_zhou_DescribableTextures.json') \
            in msg

        root = str(tmp_path)
        with pytest.raises(FileNotFoundError) as e:
            CoOpOxfordPets(data_root=root)
        assert osp.join(root, 'oxford_pets') in str(e.value)

        os.makedirs(osp.join(root, 'dtd', 'images'))
        with pytest.raises(FileNotFoundError) as e:
            CoOpDTD(data_root=root)
        split = osp.join(root, 'dtd', 'split_zhou_DescribableTextures.json')
        assert f'{split} not found' in str(e.value)

    def test_missing_image_folder(self, dtd_root):
        os.rename(
            osp.join(dtd_root, 'dtd', 'images'),
            osp.join(dtd_root, 'dtd', 'imgs'))
        with pytest.raises(FileNotFoundError) as e:
            CoOpDTD(data_root=dtd_root)
        image_root = osp.join(dtd_root, 'dtd', 'images')
        assert f'{image_root} not found' in str(e.value)
        assert 'split_zhou_DescribableTextures.json' in str(e.value)

    def _rewrite(self, root: str, text: str) -> str:
        path = osp.join(root, 'dtd', 'split_zhou_DescribableTextures.json')
        with open(path, 'w') as f:
            f.write(text)
        return path

    def test_malformed_json(self, dtd_root):
        path = self._rewrite(dtd_root, '{"train": [\n ["a.jpg", 0, "x"],\n')
        with pytest.raises(ValueError, match='line 3, column 1') as e:
            CoOpDTD(data_root=dtd_root)
        assert path in str(e.value)

    @pytest.mark.parametrize('data,match', [
        ([], 'top level is a list'),
        ({
            'train': [],
            'val': []
        }, r"missing key\(s\) \['test'\]"),
        ({
            'train': [['a.jpg', 0]],
            'val': [],
            'test': []
        }, r'entry 0 of "train" .* must be \[relpath'),
        ({
            'train': [['a.jpg', '0', 'x']],
            'val': [],
            'test': []
        }, r'entry 0 of "train"'),
        ({
            'train': [['a.jpg', True, 'x']],
            'val': [],
            'test': []
        }, r'entry 0 of "train"'),
        ({
            'train': [['a.jpg', 0, 'x'], ['b.jpg', 2, 'y']],
            'val': [],
            'test': []
        }, r'label 2 is out of range'),
        ({
            'train': [['a.jpg', -1, 'x']],
            'val': [],
            'test': []
        }, r'label -1'),
        ({
            'train': [['a.jpg', 0, 'x']],
            'val': [['b.jpg', 0, 'y']],
            'test': []
        }, r'entry 0 of "val" names label 0 \'y\', but it is '
         r"'x'"),
        ({
            'train': [],
            'val': [],
            'test': []
        }, 'has no entries'),
    ])
    def test_bad_entries(self, dtd_root, data, match):
        path = self._rewrite(dtd_root, json.dumps(data))
        with pytest.raises(ValueError, match=match) as e:
            CoOpDTD(data_root=dtd_root)
        assert path in str(e.value)

    def test_bad_arguments(self, dtd_root):
        with pytest.raises(ValueError, match='split must be one of'):
            CoOpDTD(data_root=dtd_root, split='training')
        with pytest.raises(ValueError, match='subset must be one of'):
            CoOpDTD(data_root=dtd_root, subset='new')
        with pytest.raises(TypeError, match='num_shots'):
            CoOpDTD(data_root=dtd_root, num_shots='16')


def test_dataset_wrappers_are_seen_through():
    from types import SimpleNamespace as Wrapper

    from mmpromptkd.datasets.dataset_wrappers import (
        iter_wrapped_datasets, unwrap_dataset)

    # Shaped as mmengine's RepeatDataset (dataset=) and ConcatDataset
    # (datasets=).
    a, b = ['a'], ['b']
    repeated = Wrapper(dataset=a, times=2)
    both = Wrapper(datasets=[repeated, b])
    assert list(iter_wrapped_datasets(both)) == [both, repeated, b, a]
    assert unwrap_dataset(both) is b  # the first leaf, breadth first
    assert unwrap_dataset(repeated) is a
    assert unwrap_dataset(a) is a
    # A mock makes up attributes: it wraps nothing (vis_scheduler.py's).
    mock = MagicMock(metainfo=None)
    assert list(iter_wrapped_datasets(mock)) == [mock]
    assert unwrap_dataset(mock) is mock


def test_empty_class_check_skips_datasets_without_classes():
    from mmpromptkd.engine.hooks.empty_class_check_hook import \
        find_empty_classes

    assert find_empty_classes(MagicMock(metainfo=None)) == []
    labelled = MagicMock(metainfo=dict(classes=['a', 'b']))
    labelled.get_gt_labels.return_value = [1, 1]
    assert find_empty_classes(labelled) == ["'a' (label 0)"]
