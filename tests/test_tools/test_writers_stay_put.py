"""Tools write only where they are told, and never over what a user has.

A dry run keeps every output location a config may name inside its work
dir; the tools that write files refuse to replace one without ``--force``
and never default to the shipped weights; a teacher cache whose file is
not a regular file is refused, not opened (a named pipe would block).
"""
import hashlib
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from mmpromptkd.teacher_cache import TeacherCacheError, TeacherLogitCache
from synthetic_shapes import generate_coop_dataset
from tool_runs import CONFIG, REPO, torch_threads
from tool_scripts import load_tool

DRY_RUN = load_tool('misc/dry_run.py')
USER_NOTE = b'{"mode": "train", "loss": 0.25}\n'
#: Seconds before a call that should return at once counts as hung.
HANG_TIMEOUT = 20


def _snapshot(folder: Path) -> dict:
    """Every file under ``folder`` (and every folder) by relative path,
    with the digest of its bytes."""
    found = {}
    for path in sorted(folder.rglob('*')):
        key = str(path.relative_to(folder))
        found[key] = 'dir' if path.is_dir() else \
            hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def user_folder(tmp_path) -> Path:
    """A user's folder: a log of their own and their real (shapes) data."""
    user = tmp_path / 'user'
    user.mkdir()
    (user / 'scalars.json').write_bytes(USER_NOTE)
    generate_coop_dataset(user / 'data', num_classes=4, train_per_class=2,
                          val_per_class=1, test_per_class=1)
    return user


def _outside_config(tmp_path: Path, user: Path) -> Path:
    """A config that names the user's folder as every output it can, and
    the user's data as its dataset folder (few-shot: a draw is written)."""
    data = str(user / 'data')
    config = tmp_path / 'outside.py'
    config.write_text(f"""
_base_ = [{str(CONFIG)!r}]
user = {str(user)!r}
default_hooks = dict(
    logger=dict(out_dir=user),
    checkpoint=dict(out_dir=user),
    visualization=dict(out_dir=user))
visualizer = dict(save_dir=user, vis_backends=[
    dict(type='LocalVisBackend', save_dir=user,
         scalar_save_file=user + '/scalars.json')])
train_dataloader = dict(batch_size=4,
                        dataset=dict(dataset_dir={data!r}, num_shots=2))
val_dataloader = dict(dataset=dict(dataset_dir={data!r}))
test_dataloader = dict(dataset=dict(dataset_dir={data!r}))
test_evaluator = [
    dict(type='BaseNovelAccuracy', collect_dir=user + '/collect'),
    dict(type='DumpResults', out_file_path=user + '/results.pkl'),
]
""")
    return config


def _strings(node, path=''):
    """Every string of a config node, with its dotted key path."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f'{path}.{key}' if path else key)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _strings(value, f'{path}[{i}]')
    elif isinstance(node, str):
        yield path, node


def test_dry_run_writes_nothing_outside_its_work_dir(tmp_path, user_folder,
                                                     capsys):
    config = _outside_config(tmp_path, user_folder)
    before = _snapshot(user_folder)
    with torch_threads(1):
        code = DRY_RUN.main([str(config), '--tiny', '--quick', '--work-dir',
                             str(tmp_path / 'dry')])
    out = capsys.readouterr().out
    assert _snapshot(user_folder) == before, out[-2000:]
    assert (user_folder / 'scalars.json').read_bytes() == USER_NOTE
    assert code == 0, out[-2000:]


def test_dry_run_config_names_no_outside_location(tmp_path, user_folder):
    """Where the config is rewritten: no key, nested or not, still names
    the user's folder (teacher caches and vis backends included)."""
    config = _outside_config(tmp_path, user_folder)
    with open(config, 'a') as f:
        f.write(f"""
test_dataloader = dict(dataset=dict(
    _delete_=True, type='TeacherCachedDataset', cache=user + '/cache',
    dataset=dict(type='SyntheticShapes', data_root={str(user_folder)!r},
                 dataset_dir={str(user_folder / 'data')!r})))
visualizer = dict(save_dir=user, vis_backends=[
    dict(type='LocalVisBackend', save_dir=user),
    dict(type='TensorboardVisBackend', save_dir=user)])
custom_hooks = [dict(
    type='ProfilerHook', json_trace_path=user + '/trace.json',
    on_trace_ready=dict(type='tb_trace', dir_name=user + '/tb'))]
""")
    work_dir = tmp_path / 'dry'
    run = DRY_RUN.DryRun(str(config), str(work_dir), tiny=True)
    run.weights = DRY_RUN.RandomWeights(str(work_dir / 'weights'), True)
    data = DRY_RUN.MiniatureData(str(work_dir / 'data'), 4, 2, True)
    cfg = run._prepared(str(config), data, 1)
    # (``user``: the config's own variable, which nothing reads.)
    outside = [(key, value) for key, value in _strings(cfg.to_dict())
               if str(user_folder) in value and key != 'user']
    assert outside == []


def test_dry_run_work_dir_naming_a_file_is_refused_by_name(tmp_path, capsys):
    taken = tmp_path / 'notes.txt'
    taken.write_bytes(USER_NOTE)
    assert DRY_RUN.main([str(CONFIG), '--tiny', '--quick', '--work-dir',
                         str(taken)]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith('dry run failed: ')
    assert f'work dir {taken} (--work-dir) is not a folder' in last
    assert taken.read_bytes() == USER_NOTE


# ---------------------------------------------------------------------- #
# Tools that write files.
MICRO = ('tiny_teacher_clip = dict(embed_dim=32, vision_cfg=dict('
         'image_size=32, patch_size=8, width=32, layers=1, head_width=32), '
         'text_cfg=dict(context_length=77, vocab_size=49408, width=32, '
         'heads=1, layers=1))\n'
         'tiny_student_clip = tiny_teacher_clip\n')


def test_pretrain_tiny_clip_never_defaults_to_the_shipped_weights():
    script = load_tool('misc/pretrain_tiny_clip.py')
    out_dir = Path(os.path.abspath(script.parse_args([]).out_dir))
    shipped = REPO / 'checkpoints'
    assert shipped not in (out_dir, *out_dir.parents)


def test_pretrain_tiny_clip_refuses_to_replace_weights(tmp_path):
    micro = tmp_path / 'micro.py'
    micro.write_text(MICRO)
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'tiny_clip_student.pth').write_bytes(b'my weights')
    (out / 'SHA256SUMS').write_bytes(b'my sums\n')
    before = _snapshot(out)
    script = load_tool('misc/pretrain_tiny_clip.py')
    args = ['--model-cfg', str(micro), '--which', 'student', '--steps', '1',
            '--batch-size', '4', '--images-per-class', '1',
            '--eval-per-class', '0', '--out-dir', str(out)]
    with pytest.raises(SystemExit, match='tiny_clip_student.pth'):
        script.main(args)
    assert _snapshot(out) == before
    # With --force: replaced, and the sums name the new file.
    script.main(args + ['--force'])
    state = torch.load(out / 'tiny_clip_student.pth', weights_only=True)
    assert 'visual.proj' in state
    assert (out / 'SHA256SUMS').read_text().endswith(
        '  tiny_clip_student.pth\n')
    assert sorted(p.name for p in out.iterdir()) == [
        'SHA256SUMS', 'tiny_clip_student.pth']  # no temporaries left


def test_open_clip_coverage_refuses_to_replace_its_out(tmp_path):
    coverage = load_tool('analysis/open_clip_coverage.py')
    table = tmp_path / 'coverage.md'
    table.write_bytes(USER_NOTE)
    with pytest.raises(SystemExit, match=str(table)):
        coverage.main(['--out', str(table), '--models', 'RN50'])
    assert table.read_bytes() == USER_NOTE


def test_small_hf_tokenizer_refuses_another_tokenizer_in_place(tmp_path):
    from small_hf_tokenizer import write_small_hf_tokenizer
    folder = tmp_path / 'tokenizer'
    folder.mkdir()
    (folder / 'tokenizer.json').write_bytes(USER_NOTE)
    with pytest.raises(FileExistsError, match='tokenizer.json'):
        write_small_hf_tokenizer(str(folder), 'end')
    assert (folder / 'tokenizer.json').read_bytes() == USER_NOTE
    # The same tokenizer again is no replacement: written once, reused.
    again = tmp_path / 'again'
    write_small_hf_tokenizer(str(again), 'end')
    files = _snapshot(again)
    write_small_hf_tokenizer(str(again), 'end')
    assert _snapshot(again) == files


def test_random_clip_weights_refuse_to_replace_a_file(tmp_path):
    weights = DRY_RUN.RandomWeights(str(tmp_path), tiny=True)
    (tmp_path / 'clip_0.pth').write_bytes(b'my weights')
    with pytest.raises(FileExistsError, match='clip_0.pth'):
        weights.source(dict(model_name='ViT-B-16'))
    assert (tmp_path / 'clip_0.pth').read_bytes() == b'my weights'


# ---------------------------------------------------------------------- #
# A teacher cache's files.
def _call_or_unblock(call, fifo: Path):
    """``call()`` in a thread; if it has not returned after
    :data:`HANG_TIMEOUT` seconds (blocked opening ``fifo``), the fifo is
    opened for writing so that it returns, and the test fails."""
    outcome = {}

    def target():
        try:
            outcome['value'] = call()
        except BaseException as e:  # noqa: B902  (re-raised below)
            outcome['error'] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_TIMEOUT)
    if thread.is_alive():
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)  # the blocked reader sees an empty file
        thread.join(HANG_TIMEOUT)
        pytest.fail(f'opening a cache whose {fifo.name} is a named pipe '
                    f'blocked for {HANG_TIMEOUT} s')
    if 'error' in outcome:
        raise outcome['error']
    return outcome.get('value')


def test_cache_array_named_pipe_does_not_hang(tmp_path):
    path = tmp_path / 'cache'
    rng = np.random.default_rng(0)
    cache = TeacherLogitCache.create(
        str(path), 1, 2, ['a', 'b'], rng.normal(size=(2, 4)),
        sample_paths=['0.png', '1.png'])
    cache.put(0, [0, 1], [(0, 0, 4, 4)] * 2, [False, False],
              rng.normal(size=(2, 2)))
    cache.commit()
    fifo = path / 'flips.npy'
    fifo.unlink()
    os.mkfifo(fifo)
    with pytest.raises(TeacherCacheError, match='flips.npy') as error:
        _call_or_unblock(lambda: TeacherLogitCache.open(str(path)), fifo)
    assert 'not a regular file' in str(error.value)


def test_fingerprint_of_a_named_pipe_does_not_hang(tmp_path):
    from mmpromptkd.teacher_cache.fingerprints import \
        file_fingerprint
    fifo = tmp_path / 'image.png'
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match='image.png: not a regular file'):
        _call_or_unblock(lambda: file_fingerprint(str(fifo)), fifo)
