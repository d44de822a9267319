"""A teacher cache is used only with the teacher input it was recorded on."""
from types import SimpleNamespace

import pytest
from mmpretrain.models import ClsDataPreprocessor

from mmpromptkd.teacher_cache.cached_dataset import \
    check_teacher_input
from mmpromptkd.models.utils.input_normalization import \
    teacher_input_normalization

CLIP = dict(mean=[122.7709, 116.7460, 104.0937],
            std=[68.5005, 66.6322, 70.3232])
ZERO_ONE = dict(mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0])


def model(normalization=None, preprocessor=CLIP):
    return SimpleNamespace(
        data_preprocessor=ClsDataPreprocessor(**preprocessor),
        teacher_normalization=normalization)


def cache(teacher_input):
    meta = {} if teacher_input is None else dict(teacher_input=teacher_input)
    return SimpleNamespace(path='/caches/c', meta=meta)


def test_the_teacher_gets_its_own_or_the_preprocessors_normalization():
    assert teacher_input_normalization(
        model().data_preprocessor, None) == CLIP
    assert teacher_input_normalization(
        model().data_preprocessor, ZERO_ONE) == ZERO_ONE
    with pytest.raises(ValueError, match='teacher_normalization must be'):
        teacher_input_normalization(model().data_preprocessor, [0, 1])


def test_recorded_and_current_teacher_input_must_agree():
    # Written with fewer digits (0.48145466 * 255 = 122.7709...): the same.
    check_teacher_input(
        cache(dict(mean=[122.77, 116.75, 104.09], std=CLIP['std'])), model())
    check_teacher_input(cache(ZERO_ONE), model(ZERO_ONE))
    # Recorded from a 0 / 1 teacher input, now the preprocessor's CLIP one.
    with pytest.raises(ValueError, match=r"/caches/c was recorded from "
                       r"teacher images normalised with .*'mean': \[0.0.*"
                       r"this run would give the teacher .*122.7709.*"
                       r"model.teacher_normalization"):
        check_teacher_input(cache(ZERO_ONE), model())
    # The student's preprocessor changed, the teacher's input did not.
    check_teacher_input(cache(CLIP), model(CLIP, preprocessor=ZERO_ONE))


@pytest.mark.parametrize('recorded', [
    None, 'clip', dict(mean=[1, 2], std=[1, 2, 3]),
    dict(mean=['a', 2, 3], std=[1, 2, 3]), dict(mean=[1, 2, 3])
])
def test_a_missing_or_malformed_record_is_refused(recorded):
    with pytest.raises(ValueError, match='/caches/c'):
        check_teacher_input(cache(recorded), model())
