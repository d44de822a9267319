"""Bad data: unreadable images, empty classes, mismatched teacher features.

Malformed split files (file, line and column named) and labels out of range
are covered by ``tests/test_datasets/test_coop_datasets.py::TestErrors``.
"""
import copy
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image
from torch.utils.data import DataLoader

from mmpromptkd.datasets import SyntheticShapes
from mmpromptkd.datasets.transforms import (LoadImageFromFileSafe,
                                            UnreadableImageError)
from mmpromptkd.datasets.transforms import load_image_from_file_safe as lifs
from mmpromptkd.engine.hooks import EmptyClassCheckHook
from mmpromptkd.engine.hooks.empty_class_check_hook import find_empty_classes
from mmpromptkd.registry import MODELS, TRANSFORMS
from reliability_utils import CONFIG, RANDOM_WEIGHTS, RANDOM_WEIGHTS_CONFIG
from tool_scripts import load_tool


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def data(shapes_root, tmp_path) -> Path:
    """A private copy of the synthetic-shapes data, to damage."""
    root = tmp_path / 'shapes'
    shutil.copytree(shapes_root, root)
    return root


def _split(root: Path) -> dict:
    return json.loads((root / 'split_shapes.json').read_text())


def _image(root: Path, split: str, index: int = 0) -> Path:
    return root / 'images' / _split(root)[split][index][0]


def _damage(path: Path, kind: str) -> None:
    data = path.read_bytes()
    if kind == 'truncated':
        path.write_bytes(data[:len(data) // 2])
    elif kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'garbage':
        path.write_bytes(b'not an image at all' * 10)
    elif kind == 'missing':
        path.unlink()
    else:
        raise ValueError(kind)


class TestLoadImageFromFileSafe:

    def test_good_image_as_the_default_loader(self, data):
        path = _image(data, 'train')
        safe = TRANSFORMS.build(dict(type='LoadImageFromFileSafe'))
        default = TRANSFORMS.build(dict(type='LoadImageFromFile'))
        ours = safe(dict(img_path=str(path)))
        theirs = default(dict(img_path=str(path)))
        np.testing.assert_array_equal(ours['img'], theirs['img'])
        assert ours['img_shape'] == ours['ori_shape'] == (32, 32)

    def test_image_given_as_array_passes_through(self):
        # As mmpretrain's inferencers give it, having read the file.
        img = np.zeros((5, 7, 3), np.uint8)
        sample = dict(img=img, img_shape=(5, 7), ori_shape=(5, 7))
        out = LoadImageFromFileSafe()(sample)
        assert out['img'] is img and out['img_shape'] == (5, 7)
        with pytest.raises(KeyError):  # neither a path nor an image
            LoadImageFromFileSafe()(dict(img_shape=(5, 7)))

    @pytest.mark.parametrize('kind,reason', [
        ('truncated', 'truncated'),
        ('empty', 'empty'),
        ('garbage', 'cannot decode'),
        ('missing', 'No such file'),
    ])
    def test_error_names_the_file(self, data, kind, reason):
        path = _image(data, 'train', 3)
        _damage(path, kind)
        transform = LoadImageFromFileSafe()
        with pytest.raises(UnreadableImageError) as e:
            transform(dict(img_path=str(path)))
        assert f'cannot read image {path}: ' in str(e.value)
        assert reason in str(e.value)

    def test_truncated_jpeg_the_decoder_would_accept(self, tmp_path,
                                                     monkeypatch):
        rng = np.random.default_rng(0)
        pixels = (rng.random((48, 48, 3)) * 255).astype(np.uint8)
        path = tmp_path / 'photo.jpg'
        Image.fromarray(pixels).save(path, quality=90)
        whole = path.read_bytes()
        # Bytes after the end marker are legal: still a good image.
        path.write_bytes(whole + b'\x00\x00trailer')
        assert LoadImageFromFileSafe()(dict(img_path=str(path))) is not None
        # OpenCV 4 returns a partly grey image for a cut JPEG; simulate it.
        path.write_bytes(whole[:int(len(whole) * 0.9)])
        monkeypatch.setattr(lifs.mmcv, 'imfrombytes',
                            lambda *a, **k: np.zeros((48, 48, 3), np.uint8))
        with pytest.raises(UnreadableImageError, match='truncated') as e:
            LoadImageFromFileSafe()(dict(img_path=str(path)))
        assert str(path) in str(e.value)
        # The check can be turned off.
        assert LoadImageFromFileSafe(check_truncation=False)(
            dict(img_path=str(path))) is not None

    def test_skip_needs_the_hook(self, data):
        path = _image(data, 'train')
        _damage(path, 'truncated')
        transform = LoadImageFromFileSafe(on_error='skip')
        with pytest.raises(UnreadableImageError) as e:
            transform(dict(img_path=str(path)))
        assert str(path) in str(e.value)
        assert 'SkippedImagesHook' in str(e.value)
        assert 'evaluation never skips' in str(e.value)
        assert transform.skipped_count == 0

    def test_skip_returns_none_counts_and_warns(self, data, log_messages):
        path = _image(data, 'train')
        _damage(path, 'truncated')
        transform = TRANSFORMS.build(
            dict(type='LoadImageFromFileSafe', on_error='skip'))
        transform.skip_enabled = True
        assert transform(dict(img_path=str(path))) is None
        assert transform(dict(img_path=str(path))) is None
        assert transform.skipped_count == 2
        assert transform.skipped_paths == [str(path)] * 2
        assert sum(str(path) in m and 'skipped' in m
                   for m in log_messages) == 2
        # A copy counts on its own.
        clone = copy.deepcopy(transform)
        assert clone.skipped_count == 2
        clone.reset_skipped()
        assert clone.skipped_count == 0 and transform.skipped_count == 2
        transform.reset_skipped()
        assert transform.skipped_count == 0 and transform.skipped_paths == []

    def test_invalid_arguments(self):
        with pytest.raises(ValueError, match='on_error'):
            LoadImageFromFileSafe(on_error='ignore')
        with pytest.raises(ValueError, match='on_error="skip"'):
            LoadImageFromFileSafe(ignore_empty=True)

    def test_dataset_draws_another_sample_and_workers_count(self, data):
        bad = _image(data, 'train', 5)
        _damage(bad, 'truncated')
        dataset = SyntheticShapes(
            data_root=str(data),
            split='train',
            pipeline=[dict(type='LoadImageFromFileSafe', on_error='skip')])
        transform = dataset.pipeline.transforms[0]
        transform.skip_enabled = True
        paths = [dataset[i]['img_path'] for i in range(len(dataset))]
        assert str(bad) not in paths and len(paths) == len(dataset)
        assert transform.skipped_count >= 1
        transform.reset_skipped()
        # In a worker process the count still reaches the main process.
        loader = DataLoader(
            dataset, batch_size=4, num_workers=1, collate_fn=lambda b: b)
        samples = [s for batch in loader for s in batch]
        assert len(samples) == len(dataset)
        assert all(s['img_path'] != str(bad) for s in samples)
        assert transform.skipped_count >= 1
        assert transform.skipped_paths == []  # names stayed in the worker

    def test_evaluation_dataset_never_skips(self, data):
        bad = _image(data, 'test', 1)
        _damage(bad, 'truncated')
        dataset = SyntheticShapes(
            data_root=str(data),
            split='test',
            test_mode=True,
            pipeline=[dict(type='LoadImageFromFileSafe', on_error='skip')])
        with pytest.raises(UnreadableImageError, match=re.escape(str(bad))):
            [dataset[i] for i in range(len(dataset))]


def _write_skip_config(path: Path, data: Path) -> Path:
    path.write_text(f'''
_base_ = {str(CONFIG)!r}
train_pipeline = [
    dict(type='LoadImageFromFileSafe', on_error='skip'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.6, 1.0),
         interpolation='bicubic', backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
# 'skip' here too: evaluation must refuse to skip anyway.
test_pipeline = [
    dict(type='LoadImageFromFileSafe', on_error='skip'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=8,
    dataset=dict(data_root={str(data)!r}, pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(data_root={str(data)!r}, pipeline=test_pipeline))
test_dataloader = dict(
    dataset=dict(data_root={str(data)!r}, pipeline=test_pipeline))
custom_hooks = [
    dict(type='PromptKDTextFeaturesHook'),
    dict(type='NonFiniteLossHook'),
    dict(type='SkippedImagesHook'),
]
train_cfg = dict(max_epochs=1, val_interval=1)
randomness = dict(seed=0)
{RANDOM_WEIGHTS_CONFIG}
''')
    return path


class TestSkippingInARun:

    def test_training_skips_and_counts_evaluation_refuses(self, data,
                                                          tmp_path):
        bad_train = _image(data, 'train', 2)
        bad_val = _image(data, 'val', 4)
        _damage(bad_train, 'truncated')
        _damage(bad_val, 'truncated')
        config = _write_skip_config(tmp_path / 'skip.py', data)
        work_dir = tmp_path / 'work_dir'
        train = load_tool('train.py')
        with pytest.raises(UnreadableImageError) as e:
            train.main([str(config), '--work-dir', str(work_dir)])
        # Validation stopped on its bad image, naming it.
        assert str(bad_val) in str(e.value)
        assert 'evaluation never skips' in str(e.value)
        # Training skipped its bad image, named it and counted it.
        log = next(work_dir.glob('*/*.log')).read_text()
        warnings = re.findall(
            rf'cannot read image {re.escape(str(bad_train))}: .*skipped it',
            log)
        report = re.search(
            r'Epoch 1: skipped (\d+) unreadable image\(s\) in all '
            r'processes; (\d+) in this process: (.*)', log)
        assert report, log[-3000:]
        assert int(report.group(1)) == int(report.group(2)) == \
            len(warnings) >= 1
        assert str(bad_train) in report.group(3)
        assert (work_dir / 'epoch_1.pth').is_file()


def _runner_of(dataset, batch_size=4, drop_last=False):
    loader = DataLoader(dataset, batch_size=batch_size, drop_last=drop_last)
    return SimpleNamespace(world_size=1, train_dataloader=loader)


class TestEmptyClass:

    def test_training_split_with_an_empty_class(self, data):
        split = _split(data)
        empty = split['train'][-1][2]
        label = split['train'][-1][1]
        split['train'] = [e for e in split['train'] if e[1] != label]
        (data / 'split_shapes.json').write_text(json.dumps(split))
        dataset = SyntheticShapes(data_root=str(data), split='train')
        assert find_empty_classes(dataset) == [f'{empty!r} (label {label})']
        with pytest.raises(ValueError) as e:
            EmptyClassCheckHook().before_train(_runner_of(dataset))
        assert repr(empty) in str(e.value)
        assert 'training split of SyntheticShapes' in str(e.value)
        # The base subset does not contain that (novel) class.
        base = SyntheticShapes(
            data_root=str(data), split='train', subset='base')
        EmptyClassCheckHook().before_train(_runner_of(base))
        # Evaluation splits keep the class and are not checked.
        assert find_empty_classes(
            SyntheticShapes(data_root=str(data), split='test')) == []

    def test_split_smaller_than_one_batch_with_drop_last(self, data):
        full = SyntheticShapes(data_root=str(data), split='train')
        EmptyClassCheckHook().before_train(
            _runner_of(full, batch_size=len(full), drop_last=True))
        dataset = SyntheticShapes(
            data_root=str(data), split='train', indices=5)
        with pytest.raises(ValueError) as e:
            EmptyClassCheckHook().before_train(
                _runner_of(dataset, batch_size=6, drop_last=True))
        assert ('training split of SyntheticShapes (5 images, 1 process(es))'
                in str(e.value))
        assert 'train_dataloader.batch_size=6 with drop_last=True' in str(
            e.value)
        assert 'train_dataloader.drop_last=False' in str(e.value)


class TestStoredFeaturesMismatch:

    def test_load_from_other_classes_stops_before_training(
            self, shapes_root, tmp_path):
        cfg = Config.fromfile(str(CONFIG))
        cfg.model.student.clip.checkpoint = None
        cfg.model.teacher.clip.checkpoint = None
        cfg.model.allow_untrained_teacher = True
        model = MODELS.build(cfg.model)
        other = [f'class {i}' for i in range(6)]
        model.prepare_text_features(other, for_training=True)
        checkpoint = tmp_path / 'other_classes.pth'
        torch.save(dict(meta=dict(), state_dict=model.state_dict()),
                   checkpoint)
        work_dir = tmp_path / 'work_dir'
        train = load_tool('train.py')
        with pytest.raises(ValueError) as e:
            train.main([
                str(CONFIG), '--work-dir',
                str(work_dir), '--cfg-options', f'load_from={checkpoint}',
                'train_dataloader.batch_size=8', *RANDOM_WEIGHTS, *[
                    f'{s}_dataloader.dataset.data_root={shapes_root}'
                    for s in ('train', 'val', 'test')
                ]
            ])
        message = str(e.value)
        assert 'stored text features are for 6 classes' in message
        assert 'label 0: stored "class 0", given ' in message
        log = next(work_dir.glob('*/*.log')).read_text()
        assert 'Epoch(train)' not in log
        assert not list(work_dir.glob('*.pth'))
