"""A tiny run of every config family: train one epoch, then test.

Each config keeps its own options (ablation switches, teacher and student
types); only the weight sources, prompt depths and data are replaced by
tiny ones, so the run takes seconds on a CPU.
"""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmpromptkd  # noqa: F401
import synthetic_shapes

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PREFIX = osp.join(ROOT, 'configs/promptkd/')
FAMILIES = [
    'promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-dtd.py',
    'promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_xd-imagenet-to-dtd.py',
    'promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet_'
    'projector-only.py',
    'promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet_'
    'full-finetune.py',
    'promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet_'
    'wo-shared-text.py',
    'promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet_feature-l1.py',
    'promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet_feature-mse.py',
    'promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet_'
    '16-unlabeled-per-class.py',
    'promptkd_vit-b16_vit-l14-zsclip_1xb8-20e_b2n-imagenet.py',
    'promptkd_vit-b16_vit-l14-maple_1xb8-20e_b2n-imagenet.py',
    'promptkd_mobilenet-v3-large_vit-l14-promptsrc_1xb8-20e_b2n-imagenet.py',
]
TINY = Config.fromfile(osp.join(ROOT, 'configs/_base_/models/'
                                'promptkd_tiny-clip.py'))


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    synthetic_shapes.generate_coop_dataset(
        str(root), num_classes=6, train_per_class=4, val_per_class=1,
        test_per_class=2, image_size=32)
    return str(root)


def shrink_prompted(cfg, clip):
    cfg['clip'] = dict(model_cfg=copy.deepcopy(clip), quick_gelu=True)
    for key in ('vision_prompt_depth', 'text_prompt_depth', 'prompt_depth'):
        if cfg.get(key):
            cfg[key] = min(cfg[key], 2)
    if 'checkpoint' in cfg:
        cfg['checkpoint'] = None


def tiny_version(cfg, data_root, work_dir):
    model = cfg.model
    if model.student.get('type') == 'BackboneStudent':
        model.student.image_size = 32
    else:
        shrink_prompted(model.student, TINY.tiny_student_clip)
    shrink_prompted(model.teacher, TINY.tiny_teacher_clip)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
    for split, loader in (('train', 'train_dataloader'),
                          ('test', 'test_dataloader')):
        dataset = dict(cfg[loader].dataset)
        dataset.update(type='SyntheticShapes', data_root=data_root,
                       split=split, pipeline=pipeline)
        cfg[loader] = dict(cfg[loader], dataset=dataset, num_workers=0,
                           batch_size=8)
    if cfg.train_dataloader.dataset.get('num_shots', -1) > 0:
        cfg.train_dataloader.dataset.num_shots = 2  # still a subsample
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.train_cfg = dict(by_epoch=True, max_epochs=1)
    cfg.param_scheduler = None
    cfg.work_dir = work_dir
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=100)
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize('name', FAMILIES)
def test_family_runs(name, data_root, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = tiny_version(Config.fromfile(PREFIX + name), data_root,
                           str(tmp_path))
        runner = Runner.from_cfg(cfg)
        runner.train()
        metrics = runner.test()
    finally:
        torch.set_num_threads(threads)
    for key in ('b2n/base', 'b2n/novel', 'b2n/hm', 'b2n/all'):
        assert 0.0 <= metrics[key] <= 100.0, key
    assert osp.isfile(osp.join(str(tmp_path), 'epoch_1.pth'))
