"""Teacher logit cache: recorded once, student runs without the teacher."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmpromptkd.teacher_cache import TeacherCacheError
from synthetic_shapes import generate_coop_dataset
from mmpromptkd.teacher_cache.fingerprints import file_fingerprint
from mmpromptkd.utils.checkpoint_io import load_checkpoint_file

from tool_runs import (CONFIG, TOOLS, UNTRAINED_TEACHER, call_tool, check_ok,
                       train_cmd)

CACHED = CONFIG.with_name(CONFIG.stem + '_teacher-cache.py')
pytestmark = pytest.mark.slow


def _record(root: Path, out: Path, *options: str,
            epochs: int = 2, config: Path = CONFIG):
    return call_tool(TOOLS / 'misc' / 'cache_teacher_logits.py', [
        config, '--out', out, '--epochs', str(epochs), *options,
        '--cfg-options', f'train_dataloader.dataset.data_root={root}',
        'train_dataloader.batch_size=8', 'randomness.seed=0',
        UNTRAINED_TEACHER
    ])


@pytest.fixture(scope='module')
def caches(shapes_root, tmp_path_factory) -> dict:
    """float32, float16 and top-3 caches of 2 epochs (seed 0, batch 8)."""
    tmp = tmp_path_factory.mktemp('caches')
    made = {}
    for name, options in (('float32', ['--storage', 'float32']),
                          ('float16', []),
                          ('topk', ['--storage', 'topk', '--topk', '3'])):
        out = check_ok(_record(shapes_root, tmp / name, *options))
        assert f'2 view(s) of 24 images, 6 classes, {name} logits' in out
        made[name] = tmp / name
    return made


def _train_cached(root, work_dir, cache, epochs=2, *options):
    """``train_cmd`` on the cached config (its set is one level deeper)."""
    cmd = [
        c.replace('train_dataloader.dataset.data_root',
                  'train_dataloader.dataset.dataset.data_root')
        if isinstance(c, str) else c
        for c in train_cmd(CACHED, work_dir, root, epochs)
    ]
    cmd += [f'train_dataloader.dataset.cache={cache}', *options]
    return call_tool(cmd[1], cmd[2:])


def _student(checkpoint: Path) -> dict:
    return load_checkpoint_file(str(checkpoint))['state_dict']


def _max_difference(a: dict, b: dict) -> float:
    assert set(a) == set(b)
    return max((a[k].double() - b[k].double()).abs().max().item()
               for k in a if a[k].is_floating_point())


def test_cached_run_trains_the_online_student(caches, trained, shapes_root,
                                              tmp_path):
    work_dir = tmp_path / 'cached'
    out = check_ok(_train_cached(shapes_root, work_dir, caches['float32']))
    assert 'Stored the text features of 6 classes from the teacher cache' \
        in out
    # No teacher was built, so none computed the features.
    assert 'Stored teacher text features' not in out
    online, cached = (_student(trained / 'epoch_2.pth'),
                      _student(work_dir / 'epoch_2.pth'))
    assert _max_difference(online, cached) <= 1e-6


def test_float16_and_topk_logits_train_nearly_the_same_student(
        caches, trained, shapes_root, tmp_path):
    online = _student(trained / 'epoch_2.pth')
    differences = {}
    for name in ('float16', 'topk'):
        check_ok(_train_cached(shapes_root, tmp_path / name, caches[name]))
        differences[name] = _max_difference(
            online, _student(tmp_path / name / 'epoch_2.pth'))
    # Measured after 6 steps: float16 4e-4, top-3 of 6 classes 4e-3; an
    # epoch at lr 0.001 moves the prompts by 0.08 and BN statistics by 0.7.
    assert 0 < differences['float16'] < 2e-3
    assert differences['float16'] < differences['topk'] < 0.05


def test_random_views_serve_other_seeds_and_more_epochs(
        caches, shapes_root, tmp_path):
    check_ok(_train_cached(shapes_root, tmp_path / 'random', caches['float16'],
                           3, 'train_dataloader.dataset.views=random',
                           'randomness.seed=5'))
    result = _train_cached(shapes_root, tmp_path / 'recorded',
                           caches['float16'], 3)
    assert result.returncode != 0
    assert 'holds 2 recorded view(s) per image (epochs 0-1); epoch 2 has ' \
        'none' in result.stdout


def test_a_cache_of_other_images_is_refused(caches, tmp_path):
    other = tmp_path / 'other'
    generate_coop_dataset(other, num_classes=6, train_per_class=5,
                          val_per_class=2, test_per_class=3)
    result = _train_cached(other, tmp_path / 'bad', caches['float16'])
    assert result.returncode != 0
    assert 'was recorded on 24 images, the dataset has 30' in result.stdout
    assert not list((tmp_path / 'bad').glob('*.pth'))


def test_the_tool_never_overwrites_and_needs_the_teacher_config(
        caches, shapes_root):
    result = _record(shapes_root, caches['float16'])
    assert result.returncode != 0 and 'exists' in result.stdout
    result = _record(shapes_root, caches['float16'].with_name('new'),
                     config=CACHED)
    assert result.returncode != 0
    assert 'give the config with the teacher' in result.stdout


def test_persistent_workers_replay_each_epochs_views(caches, shapes_root):
    """Workers kept between epochs read the epoch the main process sets."""
    import numpy as np
    import torch
    from mmengine.config import Config

    from mmpromptkd.teacher_cache import TeacherCachedDataset
    from mmpromptkd.registry import DATASETS
    cfg = Config.fromfile(CACHED).train_dataloader.dataset
    cfg.dataset.data_root = str(shapes_root)
    cfg.cache = str(caches['float32'])
    dataset = DATASETS.build(cfg)
    assert isinstance(dataset, TeacherCachedDataset)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, num_workers=1, persistent_workers=True,
        sampler=[0, 3])
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        for i, data in zip([0, 3], loader):
            got = data['data_samples'].teacher_logits.numpy()
            np.testing.assert_array_equal(got, dataset.cache.view(epoch,
                                                                  i)[2])


def _open_cached(cache: Path, root: Path):
    """TeacherCachedDataset of the cached config, on the data at ``root``."""
    from mmengine.config import Config

    from mmpromptkd.teacher_cache import TeacherCachedDataset
    dataset = Config.fromfile(CACHED).train_dataloader.dataset.dataset
    dataset = dataset.to_dict()
    dataset['data_root'] = str(root)
    return TeacherCachedDataset(dataset=dataset, cache=str(cache))


@pytest.fixture
def cache_copy(caches, tmp_path) -> Path:
    copy = tmp_path / 'cache'
    shutil.copytree(caches['float16'], copy)
    return copy


def _edit_meta(cache: Path, edit) -> None:
    meta = json.loads((cache / 'meta.json').read_text())
    edit(meta)
    (cache / 'meta.json').write_text(json.dumps(meta))


def test_the_recorded_cache_opens_and_names_its_teacher(
        cache_copy, shapes_root):
    assert len(_open_cached(cache_copy, shapes_root)) == 24
    meta = json.loads((cache_copy / 'meta.json').read_text())
    teacher = meta['teacher']
    # The tiny config's teacher has random prompts, allowed explicitly.
    assert teacher['trained_prompts'] is False
    assert teacher['checkpoint'] is None and len(teacher['sha256']) == 64
    # Its images had the data preprocessor's CLIP normalisation (0-255).
    assert meta['teacher_input']['mean'] == pytest.approx(
        [0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255], abs=1e-3)


def test_images_regenerated_in_place_are_refused(cache_copy, shapes_root,
                                                 tmp_path):
    """The same file names, other pixels."""
    root = tmp_path / 'data'
    shutil.copytree(shapes_root, root)
    recorded = _open_cached(cache_copy, shapes_root).get_data_info(3)
    image = root / Path(recorded['img_path']).relative_to(shapes_root)
    pixels = np.array(Image.open(image))
    Image.fromarray(255 - pixels).save(image)
    with pytest.raises(TeacherCacheError,
                       match='was recorded on other image bytes: '
                       f'.*{image.name}: recorded'):
        _open_cached(cache_copy, root)


def test_crops_cleared_to_no_crop_are_refused(cache_copy, shapes_root):
    file = cache_copy / 'crops.npy'
    crops = np.load(file)
    crops[1, 5] = -1
    np.save(file, crops)
    _edit_meta(cache_copy, lambda m: m['arrays'].update(
        crops=file_fingerprint(str(file))))
    with pytest.raises(TeacherCacheError,
                       match='view 1 of sample 5 has no crop'):
        _open_cached(cache_copy, shapes_root)


@pytest.mark.parametrize('paths', [None, 'missing', ['0.png']])
def test_missing_or_short_sample_paths_are_named(cache_copy, shapes_root,
                                                 paths):
    def edit(meta):
        if paths == 'missing':
            del meta['sample_paths']
        else:
            meta['sample_paths'] = paths

    _edit_meta(cache_copy, edit)
    with pytest.raises(TeacherCacheError,
                       match='"sample_paths" must list one string per '
                       r'recorded image \(24\)'):
        _open_cached(cache_copy, shapes_root)


# A teacher ensemble: one cache per member, mixed at training time.
ENSEMBLE = CONFIG.with_name(
    'promptkd_tiny-clip_ensemble-tiny-clip-siglip_1xb32-20e_b2n-'
    'synthetic-shapes.py')
ENSEMBLE_CACHED = ENSEMBLE.with_name(ENSEMBLE.stem + '_teacher-cache.py')


@pytest.fixture(scope='module')
def member_caches(shapes_root, tmp_path_factory) -> list:
    """float32 caches of 2 epochs of each of the tiny ensemble's members."""
    tmp = tmp_path_factory.mktemp('member_caches')
    made = []
    for i in (0, 1):
        check_ok(_record(shapes_root, tmp / f'member{i}', '--member', str(i),
                         '--storage', 'float32', config=ENSEMBLE))
        made.append(tmp / f'member{i}')
    return made


def _open_ensemble(caches, root):
    from mmengine.config import Config

    from mmpromptkd.teacher_cache import TeacherCachedDataset
    cfg = Config.fromfile(ENSEMBLE_CACHED).train_dataloader.dataset.to_dict()
    cfg['dataset']['data_root'] = str(root)
    cfg.pop('type'), cfg.pop('_scope_')
    cfg['cache'] = [str(c) for c in caches]
    return TeacherCachedDataset(**cfg)


def test_an_ensemble_from_member_caches_trains_the_online_student(
        member_caches, trained, shapes_root, tmp_path):
    _, script, *args = train_cmd(ENSEMBLE, tmp_path / 'online', shapes_root,
                                 2)
    check_ok(call_tool(script, args))
    cmd = [
        c.replace('train_dataloader.dataset.data_root',
                  'train_dataloader.dataset.dataset.data_root')
        if isinstance(c, str) else c
        for c in train_cmd(ENSEMBLE_CACHED, tmp_path / 'cached', shapes_root,
                           2)
    ]
    cmd += ['train_dataloader.dataset.cache=[{},{}]'.format(*member_caches)]
    out = check_ok(call_tool(cmd[1], cmd[2:]))
    assert 'Stored the text features of 6 classes from the teacher cache' \
        in out
    online, cached = (_student(tmp_path / 'online' / 'epoch_2.pth'),
                      _student(tmp_path / 'cached' / 'epoch_2.pth'))
    assert _max_difference(online, cached) <= 1e-5
    # The CLIP member alone, the same run otherwise, trains another student.
    assert _max_difference(online, _student(trained / 'epoch_2.pth')) > 1e-3
    # Both runs record the same ensemble as the teacher of their features.
    provenance = [
        load_checkpoint_file(str(tmp_path / run / 'epoch_2.pth'))
        ['state_dict']['text_provenance_utf8'] for run in ('online', 'cached')
    ]
    assert bytes(provenance[0].tolist()) == bytes(provenance[1].tolist())


def test_a_swapped_member_cache_is_refused_by_name(member_caches,
                                                   shapes_root):
    assert len(_open_ensemble(member_caches, shapes_root)) == 24
    with pytest.raises(TeacherCacheError,
                       match=rf'cache\[0\] {member_caches[1]} was recorded '
                       r'for members\[1\], PromptedCLIP with CLIP .*'
                       r'tiny_siglip_clip.pth.* but ensemble.members\[0\] '
                       r'is PromptedCLIP with CLIP .*tiny_clip_teacher.pth'):
        _open_ensemble(member_caches[::-1], shapes_root)
    with pytest.raises(ValueError, match='lists 1 caches for the 2 members'):
        _open_ensemble(member_caches[:1], shapes_root)
    with pytest.raises(TeacherCacheError, match=r'holds the logits of '
                       r'members\[0\] of a teacher ensemble'):
        _open_cached(member_caches[0], shapes_root)


def test_member_caches_of_other_views_or_tau_are_refused(
        member_caches, shapes_root, tmp_path):
    other = tmp_path / 'member1'
    shutil.copytree(member_caches[1], other)
    _edit_meta(other, lambda meta: meta.update(seed=7))
    with pytest.raises(TeacherCacheError,
                       match=f'{other} was recorded with seed=7, '
                       f'{member_caches[0]} with 0'):
        _open_ensemble([member_caches[0], other], shapes_root)
    dataset = _open_ensemble(member_caches, shapes_root)
    loss = type('Loss', (), {'tau': 2.0})()
    with pytest.raises(ValueError, match='was mixed from its members\' '
                       'logits at tau=1.0; the loss has tau=2.0'):
        dataset.training_text_features(type('M', (), {'distill_loss': loss}))


def test_the_recorder_needs_a_member_of_an_ensemble(member_caches,
                                                    shapes_root, tmp_path):
    result = _record(shapes_root, tmp_path / 'all', epochs=1,
                     config=ENSEMBLE)
    assert result.returncode != 0
    assert 'record one cache per member (--member 0 to 1)' in result.stdout
    result = _record(shapes_root, tmp_path / 'single', '--member', '0',
                     epochs=1)
    assert result.returncode != 0
    assert '--member 0: the config has a single teacher' in result.stdout
    assert not (tmp_path / 'all').exists()
    meta = json.loads((member_caches[1] / 'meta.json').read_text())
    assert meta['ensemble_member']['index'] == 1
    assert meta['teacher']['type'] == 'PromptedCLIP'
