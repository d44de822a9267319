"""Only the package's own temporaries of dead processes are ever removed."""
import os
import subprocess
import sys

from mmpromptkd.engine.hooks.safe_checkpoint_hook import \
    remove_stale_temporaries
from mmpromptkd.fileio import TEMPORARY_NAME, atomic_write, temporary_path


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    process.wait()
    return process.pid


def test_a_users_hidden_file_of_that_form_survives(tmp_path):
    pid = dead_pid()
    users = tmp_path / f'.thesis-draft.{pid}.tmp'
    users.write_text('chapter 3')
    ours = tmp_path / os.path.basename(
        temporary_path(str(tmp_path / 'iter_7.pth'), pid))
    ours.write_bytes(b'x')
    assert remove_stale_temporaries(str(tmp_path)) == [str(ours)]
    assert users.read_text() == 'chapter 3' and not ours.exists()


def test_folders_and_absurd_pids_are_left_alone(tmp_path):
    folder = tmp_path / os.path.basename(
        temporary_path(str(tmp_path / 'cache'), dead_pid()))
    folder.mkdir()
    absurd = tmp_path / '.mmpromptkd-iter_1.pth.99999999999999999999.tmp'
    absurd.write_bytes(b'x')
    assert remove_stale_temporaries(str(tmp_path)) == []
    assert folder.is_dir() and absurd.exists()


def test_atomic_writes_use_the_own_name(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def replace(src, dst):
        seen.append(os.path.basename(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, 'replace', replace)
    atomic_write('x', str(tmp_path / 'a.json'))
    assert seen == [f'.mmpromptkd-a.json.{os.getpid()}.tmp']
    assert TEMPORARY_NAME.match(seen[0]).group(1) == str(os.getpid())
    assert not TEMPORARY_NAME.match(f'.a.json.{os.getpid()}.tmp')


def test_a_killed_recording_leaves_nothing_behind(tmp_path):
    """The next recording of a teacher cache removes the folder a killed
    one left, and only that: another cache's and a user's stay."""
    from mmpromptkd.teacher_cache.logit_cache import TeacherLogitCache
    pid = dead_pid()
    cache = tmp_path / 'cache'
    leftover = temporary_path(str(cache), pid)
    other = temporary_path(str(tmp_path / 'other_cache'), pid)
    users = tmp_path / f'.cache.{pid}.tmp'
    for folder in (leftover, other, users):
        os.makedirs(folder)
    recording = TeacherLogitCache.create(
        str(cache), num_views=1, num_samples=2,
        class_names=['a', 'b'], storage='float32',
        text_features=[[1.0, 0.0], [0.0, 1.0]])
    assert not os.path.exists(leftover)
    assert os.path.isdir(other) and users.is_dir()
    assert os.path.basename(recording.path).startswith('.mmpromptkd-cache.')
