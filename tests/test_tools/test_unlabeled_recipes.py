"""The "distill on your own images" recipes, run as a user runs them (the
tools' ``main``, in this process)."""
import json
import random
import shutil
from pathlib import Path

import pytest
import torch

from synthetic_shapes import generate_unlabeled_images
from tool_runs import REPO, TOOLS, UNTRAINED_TEACHER, call_tool, check_ok

CONFIGS = REPO / 'configs' / 'promptkd'
FOLDER = CONFIGS / \
    'promptkd_tiny-clip_1xb32-20e_unlabeled-folder-synthetic-shapes.py'
SHARDS = CONFIGS / \
    'promptkd_tiny-clip_1xb32-1000i_unlabeled-shards-synthetic-shapes.py'
EXTRA = CONFIGS / \
    'promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes_extra-unlabeled.py'
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def unlabeled(tmp_path_factory) -> Path:
    """6 classes x 8 images beyond the 4 train images of ``shapes_root``."""
    root = tmp_path_factory.mktemp('unlabeled') / 'shapes_unlabeled'
    generate_unlabeled_images(root, num_classes=6, per_class=8,
                              first_index=4)
    return root


def _train(config, work_dir, *options, resume=False):
    args = [config, '--work-dir', work_dir]
    if resume:
        args.append('--resume')
    return call_tool(TOOLS / 'train.py',
                     args + ['--cfg-options', 'randomness.seed=0',
                             UNTRAINED_TEACHER, *options])


def _student(checkpoint):
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)
    return {k: v for k, v in state['state_dict'].items()
            if not k.startswith('data_preprocessor')}


def test_folder_recipe_validates_without_labels_and_tests_with_some(
        unlabeled, shapes_root, tmp_path):
    images, classes = unlabeled / 'images', unlabeled / 'classes.txt'
    work_dir = tmp_path / 'folder'
    out = check_ok(
        _train(FOLDER, work_dir,
               f'train_dataloader.dataset.data_root={images}',
               f'train_dataloader.dataset.classes={classes}',
               f'val_dataloader.dataset.data_root={images}',
               f'val_dataloader.dataset.classes={classes}',
               f'test_dataloader.dataset.data_root={shapes_root}',
               'train_cfg.max_epochs=2', 'train_dataloader.batch_size=8'))
    assert 'Stored teacher text features of 6 classes of UnlabeledImages' \
        in out
    assert out.count('agreement/top1:') == 2
    assert 'best_agreement_top1_epoch_' in out
    results = tmp_path / 'results.json'
    check_ok(
        call_tool(TOOLS / 'test.py', [
            FOLDER, work_dir / 'epoch_2.pth', '--work-dir', tmp_path / 'test',
            '--out', results, '--cfg-options',
            f'test_dataloader.dataset.data_root={shapes_root}',
            UNTRAINED_TEACHER
        ]))
    assert {'b2n/base', 'b2n/novel', 'b2n/hm'} <= set(
        json.loads(results.read_text()))


def test_a_class_file_with_a_repeated_name_stops_before_training(
        unlabeled, tmp_path):
    classes = tmp_path / 'classes.txt'
    names = (unlabeled / 'classes.txt').read_text().splitlines()
    classes.write_text('\n'.join(names + [names[0]]) + '\n')
    result = _train(FOLDER, tmp_path / 'bad',
                    f'train_dataloader.dataset.data_root={unlabeled}/images',
                    f'train_dataloader.dataset.classes={classes}')
    assert result.returncode != 0
    assert f"{classes}: 1 class name(s) appear more than once" in \
        result.stdout
    assert not list((tmp_path / 'bad').glob('*.pth'))


def _permute_train_labels(src: Path, dst: Path) -> None:
    """A copy of the dataset whose train images have other labels."""
    shutil.copytree(src, dst)
    split_file = dst / 'split_shapes.json'
    split = json.loads(split_file.read_text())
    labels = [entry[1:] for entry in split['train']]
    random.Random(0).shuffle(labels)
    assert labels != [entry[1:] for entry in split['train']]
    split['train'] = [[e[0], *lab] for e, lab in zip(split['train'], labels)]
    split_file.write_text(json.dumps(split))


def test_extra_unlabeled_images_and_labels_never_read(
        unlabeled, shapes_root, tmp_path):
    permuted = tmp_path / 'permuted'
    _permute_train_labels(shapes_root, permuted)
    students = []
    for name, root in (('given', shapes_root), ('permuted', permuted)):
        work_dir = tmp_path / name
        out = check_ok(
            _train(EXTRA, work_dir,
                   f'train_dataloader.dataset.datasets.0.data_root={root}',
                   'train_dataloader.dataset.datasets.1.data_root='
                   f'{unlabeled}/images',
                   f'val_dataloader.dataset.data_root={shapes_root}',
                   f'test_dataloader.dataset.data_root={shapes_root}',
                   'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
                   'train_dataloader.batch_size=8'))
        # 24 train images + 48 unlabeled ones: 9 batches of 8 per epoch.
        assert 'Epoch(train) [2][9/9]' in out
        students.append(_student(work_dir / 'epoch_2.pth'))
    assert students[0].keys() == students[1].keys()
    for key in students[0]:
        assert torch.equal(students[0][key], students[1][key]), key


def test_shards_recipe_trains_and_resumes_exactly(unlabeled, shapes_root,
                                                  tmp_path):
    shards = tmp_path / 'shards'
    check_ok(
        call_tool(TOOLS / 'misc' / 'images_to_shards.py', [
            unlabeled / 'images', shards, '--images-per-shard', '12'
        ]))
    options = [
        f'train_dataloader.dataset.shards={shards}/shard-{{000000..000003}}'
        '.tar', f'train_dataloader.dataset.classes={unlabeled}/classes.txt',
        f'val_dataloader.dataset.data_root={shapes_root}',
        f'test_dataloader.dataset.data_root={shapes_root}',
        'train_dataloader.batch_size=8', 'train_cfg.max_iters=12',
        'train_cfg.val_interval=12', 'param_scheduler.0.end=4',
        'param_scheduler.1.begin=3', 'param_scheduler.1.end=12',
        'default_hooks.checkpoint.interval=6'
    ]
    straight = tmp_path / 'straight'
    out = check_ok(_train(SHARDS, straight, *options))
    assert 'Stored teacher text features of 6 classes of UnlabeledShards' \
        in out
    assert 'Iter(val) [' in out and 'b2n/hm:' in out
    # Stopped after 6 iterations (the schedule set to 12), then resumed.
    resumed = tmp_path / 'resumed'
    check_ok(
        _train(SHARDS, resumed, *options[:-1], 'train_cfg.max_iters=6',
               'default_hooks.checkpoint.interval=6'))
    check_ok(_train(SHARDS, resumed, *options, resume=True))
    a, b = _student(straight / 'iter_12.pth'), _student(resumed /
                                                        'iter_12.pth')
    for key in a:
        assert torch.equal(a[key], b[key]), key
