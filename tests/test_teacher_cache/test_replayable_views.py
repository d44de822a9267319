"""Replayable crop and flip: the same draws as mmpretrain's, exact replay."""
import numpy as np
import pytest
from mmcv.transforms import RandomFlip
from mmpretrain.datasets.transforms import RandomResizedCrop

from mmpromptkd.datasets import (ReplayableRandomFlip,
                                 ReplayableRandomResizedCrop)
from mmpromptkd.datasets.transforms import replay_view
from mmpromptkd.teacher_cache import (TeacherCacheError,
                                      replayable_dataset_config)

CROP = dict(scale=16, crop_ratio_range=(0.3, 1.0), interpolation='bicubic',
            backend='pillow')


def _image(seed=0):
    return np.random.default_rng(seed).integers(
        0, 255, (40, 30, 3), dtype=np.uint8)


def test_crop_draws_as_mmpretrains_and_records_the_box():
    for seed in range(5):
        np.random.seed(seed)
        ours = ReplayableRandomResizedCrop(**CROP)(dict(img=_image()))
        np.random.seed(seed)
        theirs = RandomResizedCrop(**CROP)(dict(img=_image()))
        np.testing.assert_array_equal(ours['img'], theirs['img'])
        top, left, h, w = ours['view_crop']
        assert 0 <= top and top + h <= 40 and 0 <= left and left + w <= 30


def test_a_replayed_crop_is_the_recorded_view_whatever_the_generator():
    np.random.seed(3)
    transform = ReplayableRandomResizedCrop(**CROP)
    recorded = transform(dict(img=_image()))
    np.random.seed(99)
    with replay_view(recorded['view_crop'], None):
        replayed = transform(dict(img=_image()))
    np.testing.assert_array_equal(replayed['img'], recorded['img'])
    assert replayed['view_crop'] == recorded['view_crop']
    # Outside the block it draws again, from the generator.
    np.random.seed(99)
    drawn = transform(dict(img=_image()))['view_crop']
    np.random.seed(99)
    assert RandomResizedCrop(**CROP).rand_crop_params(_image()) == drawn
    assert drawn != recorded['view_crop']


def test_a_crop_that_does_not_fit_names_the_image():
    with replay_view((30, 0, 20, 10), None), \
            pytest.raises(ValueError, match='x.png: the crop'):
        ReplayableRandomResizedCrop(**CROP)(
            dict(img=_image(), img_path='x.png'))


def test_flip_draws_as_mmcvs_and_replays():
    for seed in range(6):
        np.random.seed(seed)
        ours = ReplayableRandomFlip(prob=0.5, direction='horizontal')(
            dict(img=_image()))
        np.random.seed(seed)
        theirs = RandomFlip(prob=0.5, direction='horizontal')(
            dict(img=_image()))
        assert ours['flip'] == theirs['flip']
        np.testing.assert_array_equal(ours['img'], theirs['img'])
    for flip in (True, False):
        with replay_view(None, flip):
            out = ReplayableRandomFlip(prob=0.5)(dict(img=_image()))
        assert out['flip'] is flip
        expected = _image()[:, ::-1] if flip else _image()
        np.testing.assert_array_equal(out['img'], expected)


def test_flip_needs_one_direction():
    with pytest.raises(ValueError, match='one direction'):
        ReplayableRandomFlip(prob=[0.3, 0.3],
                             direction=['horizontal', 'vertical'])


def _dataset(pipeline):
    return dict(type='ConcatDataset', datasets=[
        dict(type='SyntheticShapes', pipeline=pipeline)])


def test_the_config_gets_replayable_transforms_in_every_pipeline():
    pipeline = [
        dict(type='mmpromptkd.LoadImageFromFileSafe'),
        dict(type='RandomResizedCrop', scale=32),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='PackInputs'),
    ]
    given = _dataset(pipeline)
    converted = replayable_dataset_config(given)
    steps = converted['datasets'][0]['pipeline']
    assert [s['type'] for s in steps] == [
        'mmpromptkd.LoadImageFromFileSafe',
        'mmpromptkd.ReplayableRandomResizedCrop',
        'mmpromptkd.ReplayableRandomFlip', 'PackInputs'
    ]
    assert {'sample_idx', 'view_crop', 'flip', 'img_path'} <= set(
        steps[-1]['meta_keys'])
    assert given['datasets'][0]['pipeline'] == pipeline  # a copy


@pytest.mark.parametrize('step,match', [
    (dict(type='ColorJitter', brightness=0.4), "'ColorJitter'"),
    (dict(type='RandomResizedCrop', scale=32), 'more than one'),
])
def test_pipelines_that_cannot_be_replayed_are_refused(step, match):
    pipeline = [dict(type='RandomResizedCrop', scale=32), step,
                dict(type='PackInputs')]
    with pytest.raises(TeacherCacheError, match=match):
        replayable_dataset_config(_dataset(pipeline))
