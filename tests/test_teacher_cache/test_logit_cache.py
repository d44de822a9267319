"""TeacherLogitCache: storage formats, checks on opening, atomic writing."""
import json

import numpy as np
import pytest

from mmpromptkd.teacher_cache import TeacherCacheError, TeacherLogitCache
from mmpromptkd.teacher_cache.fingerprints import (
    bytes_fingerprint, file_fingerprint)
from mmpromptkd.utils.differences import first_difference
from mmpromptkd.teacher_cache.logit_cache import sample_paths

NAMES = [f'class {i}' for i in range(12)]


def _record(path, storage='float16', topk=None, tau=1.0, views=2, n=5,
            seed=0):
    """A cache of random logits; returns it and the logits put in it."""
    rng = np.random.default_rng(seed)
    cache = TeacherLogitCache.create(
        path, views, n, NAMES, rng.normal(size=(12, 8)), storage=storage,
        topk=topk, tau=tau, sample_paths=[f'{i}.png' for i in range(n)])
    logits = rng.normal(scale=8.0, size=(views, n, 12)) + 50
    for v in range(views):
        order = rng.permutation(n)
        crops = [(i, 1, 10, 12) for i in order]
        cache.put(v, order, crops, [bool(i % 2) for i in order],
                  logits[v, order])
    return cache.commit(), logits


def _softmax(z, tau=1.0):
    z = np.asarray(z, dtype=np.float64) / tau
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_float32_keeps_the_softmax_exactly_and_the_views(tmp_path):
    cache, logits = _record(tmp_path / 'c', 'float32')
    for v in range(2):
        for i in range(5):
            crop, flip, stored = cache.view(v, i)
            assert crop == (i, 1, 10, 12) and flip == bool(i % 2)
            # Shifted so that the maximum is 0; the softmax is unchanged.
            assert stored.max() == 0
            np.testing.assert_allclose(
                _softmax(stored), _softmax(logits[v, i]), rtol=1e-6)


def test_float16_error_is_that_of_half_steps_near_the_top(tmp_path):
    cache, logits = _record(tmp_path / 'c', 'float16')
    for i in range(5):
        stored = cache.view(1, i)[2]
        shifted = logits[1, i] - logits[1, i].max()
        # float16 has 11 significant bits: relative error <= 2**-11.
        assert np.all(np.abs(stored - shifted) <= np.abs(shifted) * 2**-11)
        p, q = _softmax(shifted), _softmax(stored)
        assert np.abs(p - q).max() < 1e-2 * p.max()


@pytest.mark.parametrize('tau', [1.0, 2.0])
def test_topk_keeps_top_probabilities_and_the_rest_mass(tmp_path, tau):
    cache, logits = _record(tmp_path / 'c', 'topk', topk=3, tau=tau)
    for i in range(5):
        dense = cache.view(0, i)[2]
        p = _softmax(logits[0, i], tau)
        q = _softmax(dense, tau)
        top = np.argsort(-p)[:3]
        np.testing.assert_allclose(q[top], p[top], rtol=1e-5)
        rest = np.setdiff1d(np.arange(12), top)
        # The rest's total mass is the teacher's, spread evenly.
        np.testing.assert_allclose(q[rest].sum(), p[rest].sum(), rtol=1e-5)
        np.testing.assert_allclose(q[rest], q[rest][0], rtol=1e-6)


def test_sizes_per_storage(tmp_path):
    sizes = {
        s: _record(tmp_path / s, s, topk=3 if s == 'topk' else None)
        [0].arrays[name].nbytes
        for s, name in (('float32', 'logits'), ('float16', 'logits'),
                        ('topk', 'topk_values'))
    }
    assert sizes['float32'] == 2 * sizes['float16'] == 2 * 5 * 12 * 4
    assert sizes['topk'] == 2 * 5 * 3 * 4


def test_an_existing_folder_is_never_overwritten(tmp_path):
    (tmp_path / 'c').mkdir()
    with pytest.raises(FileExistsError, match='never overwritten'):
        _record(tmp_path / 'c')


def test_an_incomplete_recording_is_not_written(tmp_path):
    cache = TeacherLogitCache.create(tmp_path / 'c', 1, 3, NAMES,
                                     np.zeros((12, 4)))
    cache.put(0, [0, 2], [None, None], [False, True], np.zeros((2, 12)))
    with pytest.raises(TeacherCacheError, match='sample 1 of view 0'):
        cache.commit()
    cache.discard()
    assert list(tmp_path.iterdir()) == []


def test_a_sample_twice_in_one_view_is_refused(tmp_path):
    cache = TeacherLogitCache.create(tmp_path / 'c', 1, 3, NAMES,
                                     np.zeros((12, 4)))
    with pytest.raises(ValueError, match='sample 1 appears twice'):
        cache.put(0, [1, 1], [None, None], [0, 0], np.zeros((2, 12)))


@pytest.mark.parametrize('storage,topk', [('topk', None), ('topk', 12),
                                          ('float16', 3), ('int8', None)])
def test_bad_storage_arguments(tmp_path, storage, topk):
    with pytest.raises(ValueError, match='topk|storage'):
        TeacherLogitCache.create(tmp_path / 'c', 1, 3, NAMES,
                                 np.zeros((12, 4)), storage=storage,
                                 topk=topk)


def test_not_a_cache(tmp_path):
    with pytest.raises(TeacherCacheError, match='not a teacher cache'):
        TeacherLogitCache.open(tmp_path)


def test_nan_logits_are_refused_on_opening(tmp_path):
    cache, _ = _record(tmp_path / 'c', 'float32')
    logits = np.load(tmp_path / 'c' / 'logits.npy')
    logits[1, 2, 3] = np.nan
    np.save(tmp_path / 'c' / 'logits.npy', logits)
    with pytest.raises(TeacherCacheError, match='logits.npy holds NaN'):
        TeacherLogitCache.open(tmp_path / 'c')


def test_a_truncated_array_is_refused(tmp_path):
    _record(tmp_path / 'c', 'float16')
    file = tmp_path / 'c' / 'logits.npy'
    file.write_bytes(file.read_bytes()[:-40])
    with pytest.raises(TeacherCacheError, match='logits.npy'):
        TeacherLogitCache.open(tmp_path / 'c')


def test_an_array_of_another_shape_is_refused(tmp_path):
    _record(tmp_path / 'c', 'float16')
    np.save(tmp_path / 'c' / 'flips.npy', np.zeros((2, 4), np.uint8))
    with pytest.raises(TeacherCacheError,
                       match=r'flips.npy: uint8 \(2, 4\), expected uint8 '
                       r'\(2, 5\)'):
        TeacherLogitCache.open(tmp_path / 'c')


def test_a_pickled_array_is_never_loaded(tmp_path):
    _record(tmp_path / 'c', 'float16')
    objects = np.empty(3, dtype=object)
    objects[:] = [print, 1, 'x']
    np.save(tmp_path / 'c' / 'crops.npy', objects, allow_pickle=True)
    with pytest.raises(TeacherCacheError, match='crops.npy: not a readable'):
        TeacherLogitCache.open(tmp_path / 'c')


def test_topk_indices_out_of_range_are_refused(tmp_path):
    _record(tmp_path / 'c', 'topk', topk=3)
    file = tmp_path / 'c' / 'topk_indices.npy'
    indices = np.load(file)
    indices[0, 0, 0] = 12
    np.save(file, indices)
    with pytest.raises(TeacherCacheError, match='outside 0..11'):
        TeacherLogitCache.open(tmp_path / 'c')


def test_other_versions_are_refused(tmp_path):
    _record(tmp_path / 'c')
    meta_file = tmp_path / 'c' / 'meta.json'
    meta = json.loads(meta_file.read_text())
    meta['version'] = 99
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(TeacherCacheError, match='version 99'):
        TeacherLogitCache.open(tmp_path / 'c')


def test_sample_paths_are_relative_to_their_common_folder(tmp_path):
    class Dataset:
        paths = [tmp_path / 'a' / 'x' / '1.png', tmp_path / 'a' / '2.png']

        def __len__(self):
            return len(self.paths)

        def get_data_info(self, i):
            return dict(img_path=str(self.paths[i]))

    assert sample_paths(Dataset()) == ['x/1.png', '2.png']
    Dataset.paths = [tmp_path / 'one.png']
    assert sample_paths(Dataset()) == ['one.png']


@pytest.mark.parametrize('storage, array', [('float16', 'logits'),
                                            ('float32', 'text_features'),
                                            ('topk', 'topk_values'),
                                            ('topk', 'rest_logit')])
def test_an_array_of_another_cache_is_refused(tmp_path, storage, array):
    """Copied or symlinked from a cache of the same shapes (other seed)."""
    topk = 3 if storage == 'topk' else None
    _record(tmp_path / 'c', storage, topk=topk)
    _record(tmp_path / 'other', storage, topk=topk, seed=1)
    target = tmp_path / 'c' / f'{array}.npy'
    target.unlink()
    target.symlink_to(tmp_path / 'other' / f'{array}.npy')
    with pytest.raises(TeacherCacheError,
                       match=f'{array}.npy is not the array this cache '
                       'recorded'):
        TeacherLogitCache.open(tmp_path / 'c')


@pytest.mark.parametrize('array', ['crops', 'flips'])
def test_views_changed_after_recording_are_refused(tmp_path, array):
    """Crops or flips of another seed have the shapes of the recorded ones."""
    _record(tmp_path / 'c')
    file = tmp_path / 'c' / f'{array}.npy'
    values = np.load(file)
    values[0, 1] = values[0, 2]
    np.save(file, values)
    with pytest.raises(TeacherCacheError,
                       match=f'{array}.npy is not the array this cache'):
        TeacherLogitCache.open(tmp_path / 'c')


def test_reversed_classes_are_refused(tmp_path):
    """Class columns and text-feature rows both reversed: every label is
    permuted, shapes and values stay plausible."""
    _record(tmp_path / 'c', 'float32')
    for name, axis in (('logits', -1), ('text_features', 0)):
        file = tmp_path / 'c' / f'{name}.npy'
        np.save(file, np.flip(np.load(file), axis=axis))
    with pytest.raises(TeacherCacheError, match='not the array this cache'):
        TeacherLogitCache.open(tmp_path / 'c')


def test_repeated_topk_indices_are_refused(tmp_path):
    """Even with the fingerprint rewritten to match."""
    _record(tmp_path / 'c', 'topk', topk=3)
    file = tmp_path / 'c' / 'topk_indices.npy'
    indices = np.load(file)
    indices[1, 2, 1] = indices[1, 2, 0]
    np.save(file, indices)
    meta_file = tmp_path / 'c' / 'meta.json'
    meta = json.loads(meta_file.read_text())
    meta['arrays']['topk_indices'] = file_fingerprint(str(file))
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(TeacherCacheError,
                       match='view 1 of sample 2 names one class twice'):
        TeacherLogitCache.open(tmp_path / 'c')


def test_fingerprints_are_of_the_whole_content(tmp_path):
    (tmp_path / 'a').write_bytes(b'x' * (3 << 20))
    (tmp_path / 'b').write_bytes(b'x' * ((3 << 20) - 1) + b'y')
    one, other = (file_fingerprint(str(tmp_path / n)) for n in 'ab')
    assert one.split(':')[0] == str(3 << 20) and one != other
    assert bytes_fingerprint((tmp_path / 'a').read_bytes()) == one
    assert first_difference(['1', '2'], ['1', '3'], ['a', 'b']) == \
        'b: recorded 2, now 3'
    assert first_difference(['1'], ['1']) is None
    assert first_difference(['1'], ['1', '2']) == '1 recorded entries, 2 now'


def test_a_cache_without_fingerprints_is_refused(tmp_path):
    _record(tmp_path / 'c')
    meta_file = tmp_path / 'c' / 'meta.json'
    meta = json.loads(meta_file.read_text())
    del meta['arrays']
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(TeacherCacheError, match='"arrays" must give'):
        TeacherLogitCache.open(tmp_path / 'c')
