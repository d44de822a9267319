"""UnlabeledShards: each image once per epoch, in every split of readers."""
import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
import traceback
from collections import Counter
from pathlib import Path

import pytest
from tool_scripts import load_tool
from torch.utils.data import DataLoader

from mmpromptkd.datasets import UnlabeledShards
from mmpromptkd.datasets.unlabeled_shards import CorruptShardError
from unlabeled_helpers import (key_of, png_bytes, shard_pattern,
                               write_shard, write_shards)

REPO = Path(__file__).resolve().parents[2]
LOAD = [dict(type='mmpromptkd.LoadImageFromFileSafe'),
        dict(type='PackInputs')]


def _epochs(samples, n):
    """Keys of the first ``n`` epochs of a raw stream, by epoch."""
    by_epoch = {e: Counter() for e in range(n)}
    for sample in samples:
        if sample['epoch'] >= n:
            continue
        by_epoch[sample['epoch']][key_of(sample['img_path'])] += 1
    return by_epoch


def _all_keys(sizes):
    return Counter(f's{i}_{j}' for i, n in enumerate(sizes) for j in range(n))


@pytest.mark.parametrize('workers, sizes', [(0, [5, 5, 5, 5]),
                                            (2, [5, 5, 5, 5]),
                                            (3, [3, 7, 1, 4, 6, 2])])
def test_every_image_once_per_epoch_across_workers(tmp_path, workers, sizes):
    write_shards(tmp_path, sizes)
    ds = UnlabeledShards(shard_pattern(tmp_path, len(sizes)),
                         shuffle_buffer=4, seed=3)
    loader = DataLoader(ds, batch_size=None, num_workers=workers)
    # Enough samples for every reader to finish three epochs.
    stream = list(itertools.islice(loader, 6 * sum(sizes)))
    for epoch, keys in _epochs(stream, 3).items():
        assert keys == _all_keys(sizes), epoch
    assert all('img_bytes' in s for s in stream)


def test_shards_are_reshuffled_per_epoch_the_same_in_every_process(tmp_path):
    paths = write_shards(tmp_path, [1] * 8)
    ds = UnlabeledShards(paths, seed=1)
    orders = [ds.shards_of(e, 0, 1) for e in range(3)]
    assert sorted(orders[0]) == sorted(paths)
    assert orders[0] != orders[1] != orders[2]
    again = UnlabeledShards(paths, seed=1)
    assert [again.shards_of(e, 0, 1) for e in range(3)] == orders
    # Readers of one epoch split its order without overlap.
    parts = [ds.shards_of(1, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == sorted(paths)


def test_pipeline_decodes_the_images(tmp_path):
    write_shards(tmp_path, [3])
    ds = UnlabeledShards(str(tmp_path / 'shard-000.tar'), classes=['a', 'b'],
                         pipeline=LOAD, shuffle_buffer=1)
    first = next(iter(ds))
    assert tuple(first['inputs'].shape) == (3, 8, 8)
    assert first['data_samples'].img_path.endswith('shard-000.tar#s0_0')
    assert 'gt_label' not in first['data_samples']
    assert ds.metainfo['classes'] == ('a', 'b')


TWO_PROCESSES = textwrap.dedent('''
    import itertools, json, sys
    import torch.distributed as dist
    from torch.utils.data import DataLoader
    dist.init_process_group('gloo')
    from mmpromptkd.datasets import UnlabeledShards
    ds = UnlabeledShards(sys.argv[1], shuffle_buffer=3, seed=7)
    loader = DataLoader(ds, batch_size=None, num_workers=2)
    seen = [(s['epoch'], s['img_path'].rsplit('#', 1)[1])
            for s in itertools.islice(loader, int(sys.argv[2]))]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, seen)
    if dist.get_rank() == 0:
        with open(sys.argv[3], 'w') as f:
            json.dump(out, f)
    dist.destroy_process_group()
''')


def test_two_processes_see_every_image_once_per_epoch(tmp_path):
    sizes = [4, 4, 4, 4, 4, 4, 4, 4]  # 8 shards for 2 x 2 readers
    write_shards(tmp_path / 'shards', sizes)
    script = tmp_path / 'read.py'
    script.write_text(TWO_PROCESSES)
    out = tmp_path / 'seen.json'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)
    result = subprocess.run([
        sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node=2',
        '--standalone', script,
        shard_pattern(tmp_path / 'shards', len(sizes)), '48', out
    ], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    per_rank = json.loads(out.read_text())
    assert len(per_rank) == 2
    for epoch in (0, 1):
        ranks = [Counter(k for e, k in seen if e == epoch)
                 for seen in per_rank]
        assert not set(ranks[0]) & set(ranks[1]), epoch
        assert ranks[0] + ranks[1] == _all_keys(sizes), epoch


def test_too_few_shards_for_the_readers(tmp_path):
    write_shards(tmp_path, [2, 2])
    ds = UnlabeledShards(shard_pattern(tmp_path, 2))
    loader = DataLoader(ds, batch_size=None, num_workers=3)
    batches, message = iter(loader), ''
    try:
        next(batches)
    except ValueError as e:
        message = str(e)
        # Its traceback's frames hold the iterator in a reference cycle.
        traceback.clear_frames(e.__traceback__)
    # Ends the workers now (left to the garbage collector, each would cost
    # torch's 5 s join timeout in a later test).
    del batches
    assert re.search(r'2 shard\(s\) for 3 readers', message)


def _truncate(path, keep):
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:keep])


@pytest.mark.parametrize('cut', ['mid_member', 'member_boundary', 'odd'])
def test_a_truncated_shard_stops_or_is_skipped_on_request(tmp_path, cut):
    paths = write_shards(tmp_path, [3, 3])
    size = os.path.getsize(paths[1])
    keep = {'mid_member': 1024 + 512, 'member_boundary': 512 * 4,
            'odd': size - 700}[cut]
    _truncate(paths[1], keep)
    # Found when the images are counted, before any training.
    with pytest.raises(CorruptShardError, match='shard-001.tar.*truncated'):
        UnlabeledShards(paths)
    skip = UnlabeledShards(paths, shuffle_buffer=1, on_error='skip')
    assert skip.shards == paths[:1] and len(skip) == 3
    keys = Counter(key_of(s['img_path'])
                   for s in itertools.islice(iter(skip), 9))
    assert keys == Counter({'s0_0': 3, 's0_1': 3, 's0_2': 3})
    # With the count given, the shards are checked as they are streamed.
    ds = UnlabeledShards(paths, shuffle_buffer=1, num_images=6)
    with pytest.raises(CorruptShardError, match='shard-001.tar.*truncated'):
        list(itertools.islice(iter(ds), 12))
    ds = UnlabeledShards(paths, shuffle_buffer=1, num_images=6,
                         on_error='skip')
    assert {key_of(s['img_path'])
            for s in itertools.islice(iter(ds), 9)} == set(keys)


def test_length_is_one_epoch_per_process(tmp_path):
    write_shards(tmp_path, [3, 4, 5])
    ds = UnlabeledShards(shard_pattern(tmp_path, 3))
    assert ds.num_images == 12 and len(ds) == 12
    ds.world_size = 5
    assert len(ds) == 2
    with pytest.raises(ValueError, match='num_images must be an int'):
        UnlabeledShards(shard_pattern(tmp_path, 3), num_images=0)


def test_garbage_instead_of_a_tar(tmp_path):
    paths = write_shards(tmp_path, [2])
    Path(paths[0]).write_bytes(b'\x01' * 2048)
    with pytest.raises(CorruptShardError, match='truncated'):
        UnlabeledShards(paths)
    Path(paths[0]).write_bytes(b'\x01' * 1024 + b'\0' * 1024)
    with pytest.raises(CorruptShardError, match='not a readable tar file'):
        UnlabeledShards(paths)


def test_samples_without_exactly_one_image(tmp_path):
    path = tmp_path / 'mixed.tar'
    write_shard(path, {
        'good': {'png': png_bytes(1), 'json': b'{}'},
        'text_only': {'txt': b'caption'},
        'two': {'png': png_bytes(2), 'jpg': png_bytes(3)},
    })
    ds = UnlabeledShards(str(path))
    assert ds.num_images == 2  # 'good' and 'two' have images
    with pytest.raises(CorruptShardError,
                       match=r"mixed.tar#text_only has 0 image members "
                       r"\(of \['txt'\]\)"):
        list(itertools.islice(iter(ds), 2))
    skip = UnlabeledShards(str(path), on_error='skip')
    assert {key_of(s['img_path'])
            for s in itertools.islice(iter(skip), 3)} == {'good'}
    everything_bad = tmp_path / 'bad.tar'
    write_shard(everything_bad, {'t': {'txt': b'x'}})
    with pytest.raises(CorruptShardError, match='no image in the shards'):
        UnlabeledShards(str(everything_bad))
    only_two = tmp_path / 'two.tar'
    write_shard(only_two, {'two': {'png': png_bytes(2), 'jpg': png_bytes(3)}})
    with pytest.raises(CorruptShardError, match='no readable sample'):
        next(iter(UnlabeledShards(str(only_two), on_error='skip')))


@pytest.mark.parametrize('shards, error, match', [
    ('pipe:cat /etc/passwd', ValueError, 'not a local path'),
    ('https://example.com/shard-{0..3}.tar', ValueError, 'not a local path'),
    ([], ValueError, 'shards is empty'),
])
def test_only_local_files_are_read(shards, error, match):
    with pytest.raises(error, match=match):
        UnlabeledShards(shards)


def test_missing_and_repeated_shards(tmp_path):
    write_shards(tmp_path, [1, 1])
    with pytest.raises(FileNotFoundError,
                       match=r'1 of 3 shard\(s\) not found'):
        UnlabeledShards(shard_pattern(tmp_path, 3))
    path = str(tmp_path / 'shard-000.tar')
    (tmp_path / 'sub').mkdir()
    for other in (path, f'{tmp_path}/./shard-000.tar',
                  str(tmp_path / 'sub' / '..' / 'shard-000.tar')):
        with pytest.raises(ValueError,
                           match=f"shard '{re.escape(other)}' is "
                           f"'{re.escape(path)}', listed already"):
            UnlabeledShards([path, other])


def test_images_to_shards_tool_round_trip(tmp_path):
    from unlabeled_helpers import write_images
    write_images(tmp_path / 'imgs', [f'c{i % 3}/{i}.x.png' for i in range(7)])
    (tmp_path / 'imgs' / 'notes.txt').write_text('x')
    tool = [sys.executable, REPO / 'tools/misc/images_to_shards.py',
            tmp_path / 'imgs', tmp_path / 'out', '--images-per-shard', '3']
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    # The script starts alone (no PYTHONPATH); refusals in this process.
    ok = subprocess.run(tool + ['--skip-non-images'], capture_output=True,
                        text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    main = load_tool('misc/images_to_shards.py').main
    args = [str(a) for a in tool[2:]]
    with pytest.raises(ValueError, match='notes.txt'):
        main([args[0], str(tmp_path / 'out2'), *args[2:]])
    assert not (tmp_path / 'out2').exists()
    index = json.loads((tmp_path / 'out' / 'shards.json').read_text())
    assert index['images_per_shard'] == [3, 3, 1]
    ds = UnlabeledShards(str(tmp_path / 'out' / index['shards']),
                         pipeline=LOAD, shuffle_buffer=1)
    got = list(itertools.islice(iter(ds), 7))
    assert len({s['data_samples'].img_path for s in got}) == 7
    with pytest.raises(SystemExit, match='refusing to overwrite'):
        main(args + ['--skip-non-images'])
