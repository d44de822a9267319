"""The Dassl few-shot sampler and the restricted reader of Dassl's caches."""
import copyreg
import json
import os
import os.path as osp
import pickle
import random
import sys
import types
from collections import defaultdict

import pytest

import mmpromptkd  # noqa: F401  (registers everything)
from mmpromptkd.datasets import CoOpDTD, CoOpImageNet
from mmpromptkd.datasets.few_shot_cache import read_dassl_few_shot_cache

NUM_CLASSES = 12
DASSL_ROOT = '/home/someone/DATA'  # where "Dassl" drew the split


class Datum:
    """What Dassl pickles (dassl.data.datasets.base_dataset.Datum)."""

    def __init__(self, impath='', label=0, domain=0, classname=''):
        self._impath = impath
        self._label = label
        self._domain = domain
        self._classname = classname


Datum.__module__ = 'dassl.data.datasets.base_dataset'


@pytest.fixture
def dassl_module(monkeypatch):
    """Make ``Datum`` picklable under Dassl's module name, as Dassl has it."""
    for name in ('dassl', 'dassl.data', 'dassl.data.datasets'):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    module = types.ModuleType('dassl.data.datasets.base_dataset')
    module.Datum = Datum
    monkeypatch.setitem(sys.modules, module.__name__, module)


def class_name(label):
    return f'class_{label:02d}'


@pytest.fixture
def split(tmp_path):
    """A DTD-layout split whose labels are interleaved, not grouped.

    Classes have 5 to 9 train and 3 to 6 val images (shots 4: some classes
    are short in val), and the entries are shuffled, so both the order of
    first appearance and the order within a class matter.
    """
    rng = random.Random(0)
    data = {}
    for name, (lo, hi) in (('train', (5, 9)), ('val', (3, 6)), ('test', (2,
                                                                         2))):
        entries = [[f'{class_name(c)}/{name}_{i:02d}.jpg', c,
                    class_name(c)] for c in range(NUM_CLASSES)
                   for i in range(rng.randint(lo, hi))]
        rng.shuffle(entries)
        data[name] = entries
    os.makedirs(tmp_path / 'dtd' / 'images')
    (tmp_path / 'dtd' / 'split_zhou_DescribableTextures.json').write_text(
        json.dumps(data))
    return data


def dassl_draw(split, num_shots, seed):
    """Dassl's few-shot draw, written out independently of the package.

    As Dassl: the global generator is seeded with the run's seed; the train
    split and then the val split (``min(num_shots, 4)``) are grouped by label
    in order of first appearance and ``random.sample`` picks per label.
    """

    def generate(data_source, k):
        tracker = defaultdict(list)
        for item in data_source:
            tracker[item._label].append(item)
        out = []
        for items in tracker.values():
            out.extend(random.sample(items, k) if len(items) >= k else items)
        return out

    state = random.getstate()
    try:
        random.seed(seed)
        datums = {
            name: [
                Datum(osp.join(DASSL_ROOT, 'dtd', 'images', p), lab, 0, c)
                for p, lab, c in split[name]
            ]
            for name in ('train', 'val')
        }
        return {
            'train': generate(datums['train'], num_shots),
            'val': generate(datums['val'], min(num_shots, 4)),
        }
    finally:
        random.setstate(state)


def relative(datums):
    prefix = osp.join(DASSL_ROOT, 'dtd', 'images') + '/'
    return [(d._impath[len(prefix):], d._label) for d in datums]


def samples(ds):
    prefix = osp.join(ds.data_root, 'dtd', 'images') + '/'
    return [(info['img_path'][len(prefix):], info['gt_label'])
            for info in ds.load_data_list()]


def build(root, split='train', seed=1, subset='all', **kwargs):
    return CoOpDTD(
        data_root=str(root),
        split=split,
        subset=subset,
        num_shots=4,
        seed=seed,
        few_shot_sampler='dassl',
        **kwargs)


@pytest.mark.filterwarnings('ignore:.*keep all of them:UserWarning')
class TestDasslSampler:

    @pytest.mark.parametrize('seed', [1, 2, 3])
    def test_same_images_in_the_same_order_as_dassl(self, tmp_path, split,
                                                    seed):
        expected = dassl_draw(split, 4, seed)
        for name in ('train', 'val'):
            ds = build(tmp_path, name, seed, cache_few_shot=False)
            assert samples(ds) == relative(expected[name])
        # The draw is not the package's own rule.
        own = CoOpDTD(
            data_root=str(tmp_path),
            split='train',
            num_shots=4,
            seed=seed,
            cache_few_shot=False)
        assert samples(own) != relative(expected['train'])

    def test_base_subset_is_taken_after_the_draw(self, tmp_path, split):
        expected = [(p, lab)
                    for p, lab in relative(dassl_draw(split, 4, 1)['train'])
                    if lab < NUM_CLASSES // 2]
        ds = build(tmp_path, subset='base', cache_few_shot=False)
        assert samples(ds) == expected

    def test_cached_draw_has_its_own_file(self, tmp_path, split):
        first = samples(build(tmp_path))
        folder = tmp_path / 'dtd' / 'split_fewshot'
        assert sorted(os.listdir(folder)) == ['shot_4-seed_1-dassl.json']
        assert samples(build(tmp_path)) == first
        CoOpDTD(data_root=str(tmp_path), split='train', num_shots=4, seed=1)
        assert sorted(os.listdir(folder)) == [
            'shot_4-seed_1-dassl.json', 'shot_4-seed_1.json'
        ]

    def test_unknown_sampler(self, tmp_path, split):
        with pytest.raises(
                ValueError,
                match="few_shot_sampler must be one "
                "of .*got 'random'"):
            CoOpDTD(
                data_root=str(tmp_path),
                num_shots=4,
                few_shot_sampler='random')


@pytest.mark.filterwarnings('ignore:.*keep all of them:UserWarning')
class TestDasslCache:

    def write_pkl(self, root, payload, seed=1):
        folder = root / 'dtd' / 'split_fewshot'
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f'shot_4-seed_{seed}.pkl'
        with open(path, 'wb') as f:
            pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    def test_released_cache_is_read(self, tmp_path, split, dassl_module):
        # Dassl's file wins over a fresh draw: here it holds seed 7's draw.
        released = dassl_draw(split, 4, 7)
        self.write_pkl(tmp_path, released)
        for name in ('train', 'val'):
            assert samples(build(tmp_path, name)) == relative(released[name])
        # Only the Dassl sampler reads it; nothing is written next to it.
        assert sorted(os.listdir(tmp_path / 'dtd' /
                                 'split_fewshot')) == ['shot_4-seed_1.pkl']
        records = read_dassl_few_shot_cache(
            str(tmp_path / 'dtd/split_fewshot/shot_4-seed_1.pkl'),
            ('train', 'val'))
        assert records['train'][0] == (released['train'][0]._impath,
                                       released['train'][0]._label,
                                       released['train'][0]._classname)

    def test_cache_of_other_data(self, tmp_path, split, dassl_module):
        released = dassl_draw(split, 4, 1)
        released['train'][3]._impath = '/elsewhere/dtd/images/x/y.jpg'
        path = self.write_pkl(tmp_path, released)
        with pytest.raises(ValueError) as e:
            samples(build(tmp_path))
        assert str(path) in str(e.value)
        assert 'item 3 of "train" (/elsewhere/dtd/images/x/y.jpg)' in str(
            e.value)
        released['train'][3] = released['train'][4]
        released['train'][4]._label += 1
        self.write_pkl(tmp_path, released)
        with pytest.raises(ValueError, match='item 3 of "train" .* has label'):
            samples(build(tmp_path))

    def test_imagenet_cache_has_train_only(self, tmp_path, dassl_module):
        root = tmp_path / 'imagenet'
        (root / 'images' / 'val' / 'n0').mkdir(parents=True)
        for i in range(6):
            folder = root / 'images' / 'train' / 'n0'
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f'{i}.JPEG').write_bytes(b'')
        (root / 'classnames.txt').write_text('n0 tench\n')
        picked = [5, 0, 3, 1]
        payload = {
            'train': [
                Datum(f'/x/imagenet/images/train/n0/{i}.JPEG', 0, 0, 'tench')
                for i in picked
            ]
        }
        (root / 'split_fewshot').mkdir()
        with open(root / 'split_fewshot' / 'shot_4-seed_1.pkl', 'wb') as f:
            pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
        ds = CoOpImageNet(
            data_root=str(tmp_path),
            split='train',
            num_shots=4,
            few_shot_sampler='dassl')
        assert [osp.basename(i['img_path'])
                for i in ds.load_data_list()] == [f'{i}.JPEG' for i in picked]


class Payload:
    """Builds pickles that would run code under a general unpickler."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class DatumCall:
    """Pickles as a call of ``Datum`` with arguments."""

    def __reduce__(self):
        return (Datum, ('/a/b.jpg', 1, 0, 'b'))


class TestRestrictedReader:

    def check_refused(self, tmp_path, data, match):
        path = tmp_path / 'shot_4-seed_1.pkl'
        path.write_bytes(data)
        with pytest.raises(ValueError, match=match) as e:
            read_dassl_few_shot_cache(str(path), ('train', ))
        assert str(path) in str(e.value)

    def test_code_is_never_run(self, tmp_path):
        marker = tmp_path / 'ran'
        payloads = [
            Payload(marker),
            {
                'train': [Payload(marker)]
            },
            {
                'train': [],
                'val': {
                    'x': [Payload(marker)]
                }
            },
        ]
        for payload in payloads:
            self.check_refused(tmp_path, pickle.dumps(payload, protocol=4),
                               'refusing global posix.system')
        # Sanity: the payload does run under a general unpickler.
        pickle.loads(pickle.dumps(Payload(marker)))
        assert marker.exists()

    def test_extension_codes_are_refused(self, tmp_path):
        marker = tmp_path / 'ran'
        copyreg.add_extension('posix', 'system', 0xf0)
        try:
            data = pickle.dumps(Payload(marker), protocol=2)
        finally:
            copyreg.remove_extension('posix', 'system', 0xf0)
        assert pickle.EXT1 in data
        copyreg.add_extension('posix', 'system', 0xf0)
        try:
            self.check_refused(tmp_path, data, 'refusing global posix.system')
        finally:
            copyreg.remove_extension('posix', 'system', 0xf0)
        assert not marker.exists()

    def test_datum_state_is_checked(self, tmp_path, dassl_module):
        datum = Datum('/a/b.jpg', 1, 0, 'b')
        datum.extra = 'x'
        self.check_refused(tmp_path,
                           pickle.dumps({'train': [datum]}, protocol=4),
                           'a Datum has state')
        datum = Datum('/a/b.jpg', '1', 0, 'b')
        self.check_refused(tmp_path,
                           pickle.dumps({'train': [datum]}, protocol=4),
                           'a Datum has state')
        # Datum called with arguments (REDUCE) is refused as well.
        self.check_refused(tmp_path,
                           pickle.dumps({'train': [DatumCall()]}, protocol=4),
                           'not a Dassl few-shot cache')

    def test_not_a_cache(self, tmp_path, dassl_module):
        self.check_refused(tmp_path, b'not a pickle', 'not a Dassl few-shot')
        self.check_refused(tmp_path, pickle.dumps({'val': []}),
                           "keys \\['val'\\]")
        self.check_refused(tmp_path, pickle.dumps({'train': [1]}),
                           'item 0 of "train" is not a Datum')


def dtd_loader(root, split='train', **dataset):
    """A dataloader config of the DTD-layout split, 4 Dassl shots."""
    return dict(
        batch_size=2,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(_scope_='mmpromptkd', type='CoOpDTD',
                     data_root=str(root), split=split,
                     num_shots=4, few_shot_sampler='dassl',
                     cache_few_shot=False, **dataset))


@pytest.mark.filterwarnings('ignore:.*keep all of them:UserWarning')
class TestRunSeed:
    """The few-shot draw follows the run's seed unless a dataset sets one."""

    def draw(self, root, run_seed, split='train', diff_rank_seed=False,
             **dataset):
        from mmpromptkd.engine.runner import SafeLoadingRunner
        loader = SafeLoadingRunner.build_dataloader(
            dtd_loader(root, split, **dataset), seed=run_seed,
            diff_rank_seed=diff_rank_seed)
        return samples(loader.dataset)

    @pytest.mark.parametrize('seed', [1, 2, 3])
    def test_the_run_seed_draws_the_reference_shots(self, tmp_path, split,
                                                    seed):
        expected = dassl_draw(split, 4, seed)
        for name in ('train', 'val'):
            assert self.draw(tmp_path, seed, name) == \
                relative(expected[name])

    def test_seed_2_of_the_run_alone_draws_seed_2(self, tmp_path, split):
        by_run = self.draw(tmp_path, 2)
        assert by_run != self.draw(tmp_path, 1)
        assert by_run == samples(build(tmp_path, seed=2,
                                       cache_few_shot=False))

    def test_an_explicit_dataset_seed_wins(self, tmp_path, split):
        assert self.draw(tmp_path, 2, seed=3) == \
            relative(dassl_draw(split, 4, 3)['train'])
        assert self.draw(tmp_path, 2, seed=1) == self.draw(tmp_path, 1)

    def test_outside_a_run_the_seed_is_1(self, tmp_path, split):
        ds = CoOpDTD(data_root=str(tmp_path), num_shots=4,
                     few_shot_sampler='dassl', cache_few_shot=False)
        assert ds.seed == 1
        assert samples(ds) == relative(dassl_draw(split, 4, 1)['train'])

    def test_every_rank_draws_the_same_shots(self, tmp_path, split,
                                             monkeypatch):
        # With diff_rank_seed, mmengine gives rank 1 of a seed-2 run the
        # seed 3; its shots are still those of seed 2.
        from mmpromptkd.engine.runner import safe_loading_runner
        monkeypatch.setattr(safe_loading_runner, 'get_rank', lambda: 1)
        assert self.draw(tmp_path, 3, diff_rank_seed=True) == \
            relative(dassl_draw(split, 4, 2)['train'])

    def test_training_and_testing_runs_draw_alike(self, tmp_path, split):
        """``randomness.seed`` reaches the train, val and test loops (an
        evaluation on a few-shot split draws the training's shots)."""
        import torch
        from mmengine.model import BaseModel

        from mmpromptkd.engine.runner import SafeLoadingRunner

        class Toy(BaseModel):

            def __init__(self):
                super().__init__()
                self.linear = torch.nn.Linear(1, 1)

            def forward(self, inputs, data_samples=None, mode='tensor'):
                return inputs

        runner = SafeLoadingRunner(
            model=Toy(),
            work_dir=str(tmp_path / 'work_dir'),
            train_dataloader=dtd_loader(tmp_path),
            train_cfg=dict(by_epoch=True, max_epochs=1),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
            val_dataloader=dtd_loader(tmp_path, 'val'),
            val_cfg=dict(),
            val_evaluator=dict(type='BaseNovelAccuracy'),
            test_dataloader=dtd_loader(tmp_path, 'train'),
            test_cfg=dict(),
            test_evaluator=dict(type='BaseNovelAccuracy'),
            randomness=dict(seed=2),
            default_scope='mmpromptkd')
        expected = dassl_draw(split, 4, 2)
        assert samples(runner.train_loop.dataloader.dataset) == \
            relative(expected['train'])
        assert samples(runner.val_loop.dataloader.dataset) == \
            relative(expected['val'])
        assert samples(runner.test_loop.dataloader.dataset) == \
            relative(expected['train'])
