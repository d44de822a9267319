"""Every config parses, and the schedule matches the reference's."""
import ast
import glob
import re
import os.path as osp
from pathlib import Path

import pytest
from mmengine.config import Config

import mmpromptkd  # noqa: F401
from lr_schedules import dassl_lrs, schedule_length, scheduled_lrs

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# The mmpretrain-runtime example has mmpretrain's scope and schedule on
# purpose (tests/test_tools/test_openmmlab_tools.py trains it).
CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs/promptkd/*.py'))
    if not p.endswith('_mmpretrain-runtime.py'))
# The method itself, with the reference hyper-parameters.
MAIN = re.compile(r'promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_'
                  r'(b2n|xd-imagenet-to)-[a-z0-9-]+\.py$')
LOW_WEIGHT = ('oxford-flowers', 'fgvc-aircraft', 'dtd')


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpromptkd'
    assert cfg.model.type == 'PromptKDDistiller'
    assert any(h.type == 'PromptKDTextFeaturesHook' for h in cfg.custom_hooks)
    lrs = scheduled_lrs(cfg)
    # Dassl's warm-up: as many steps as ConstantLR holds (its `end` - 1).
    warmup = next(s['end'] - 1 for s in cfg.param_scheduler
                  if s['type'] == 'ConstantLR')
    expected = dassl_lrs(cfg.optim_wrapper.optimizer.lr,
                         schedule_length(cfg), warmup_epoch=warmup)
    assert lrs == pytest.approx(expected, rel=1e-9, abs=1e-15)
    if not MAIN.search(path):
        return
    # Reference hyper-parameters of stage (b).
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=0.005, momentum=0.9, weight_decay=5e-4)
    assert cfg.train_cfg.max_epochs == 20
    assert cfg.train_dataloader.batch_size == 8
    assert cfg.train_dataloader.dataset.subset == 'all'
    assert cfg.model.distill_loss.tau == 1.0
    # 200 for three datasets in base-to-novel; 1000 for every other one and
    # for every cross-dataset target.
    weight = 200.0 if '_b2n-' in path and any(
        k in path for k in LOW_WEIGHT) else 1000.0
    assert cfg.model.distill_loss.loss_weight == weight
    depth = 3 if '_xd-' in path else 9
    assert cfg.model.student.vision_prompt_depth == depth
    assert cfg.model.teacher.text_prompt_depth == depth
    assert cfg.model.student.vision_prompt_length == 4
    crop = cfg.train_dataloader.dataset.pipeline[1]
    assert crop.type == 'RandomResizedCrop' and crop.scale == 224
    assert crop.interpolation == 'bicubic'


DATASET_CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs/_base_/datasets/*.py')))


@pytest.mark.parametrize('path', DATASET_CONFIGS, ids=osp.basename)
def test_dataset_configs_name_unreadable_images(path):
    """Every loader of the dataset configs is the one that names bad files."""
    cfg = Config.fromfile(path)
    for split in ('train', 'val', 'test'):
        pipeline = cfg[f'{split}_dataloader'].dataset.pipeline
        assert pipeline[0].type == 'mmpromptkd.LoadImageFromFileSafe', split
        assert pipeline[0].get('on_error', 'raise') == 'raise', split


ALL_CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs/**/*.py'), recursive=True)
    if '_base_' not in p)


def _datasets(dataset):
    """A dataset config and those it wraps (``ConcatDataset``, ...)."""
    yield dataset
    for inner in [dataset.get('dataset'), *dataset.get('datasets', [])]:
        if inner is not None:
            yield from _datasets(inner)


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=osp.basename)
def test_builds_in_our_scope_under_any_default_scope(path):
    """Model, datasets and metrics name their scope, and every transform is
    ours by scoped name or mmpretrain's by bare name: mmpretrain's tools
    and inferencers, which set mmpretrain's scope, find each of them."""
    from mmpretrain.registry import TRANSFORMS
    cfg = Config.fromfile(path)
    assert cfg.model.get('_scope_') == 'mmpromptkd'
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if loader is None:
            continue
        for dataset in _datasets(loader.dataset):
            assert dataset.get('_scope_') == 'mmpromptkd', split
            for transform in dataset.get('pipeline', ()):
                name = transform.type
                assert name.startswith('mmpromptkd.') or \
                    TRANSFORMS.get(name) is not None, f'{split}: {name}'
    for key in ('val_evaluator', 'test_evaluator'):
        if cfg.get(key) is not None:
            assert cfg[key].get('_scope_') == 'mmpromptkd', key


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=osp.basename)
def test_real_configs_keep_the_last_checkpoint_without_frozen_weights(path):
    """The official code's keep policy: the last checkpoint (and the best
    one where save_best is set); tiny demo runs keep every epoch."""
    hook = Config.fromfile(path).default_hooks.checkpoint
    if hook.type != 'SafeCheckpointHook':
        return  # the mmpretrain-runtime demo: mmengine's own hook
    assert not hook.get('save_frozen_weights', False)
    tiny = 'tiny-clip' in osp.basename(path)
    assert hook.max_keep_ckpts == (-1 if tiny else 1)


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=osp.basename)
def test_auto_scale_lr_names_the_configs_total_batch(path):
    """``auto_scale_lr.base_batch_size`` is the total batch of one update
    that the config's lr is set for, as its name says (``1xb8``: 8)."""
    cfg = Config.fromfile(path)
    accumulation = cfg.optim_wrapper.get('accumulative_counts', 1)
    total = cfg.train_dataloader.batch_size * accumulation
    assert cfg.auto_scale_lr == dict(base_batch_size=total)
    named = re.search(r'_(\d+)xb(\d+)-', osp.basename(path))
    if named:  # the zero-shot configs train nothing and name no batch
        assert int(named[1]) * int(named[2]) == total


OWN_IMAGES_TINY = osp.join(
    ROOT, 'configs/promptkd/'
    'promptkd_tiny-clip_1xb32-20e_unlabeled-folder-synthetic-shapes.py')


def test_own_images_recipe_takes_images_of_any_size(tmp_path):
    """The tiny recipe's pipelines bring 224 px (and odd-sized) images to
    the tiny CLIPs' 32 px, and leave the generated 32 px images as they
    are."""
    import numpy as np
    from PIL import Image

    from mmpromptkd.registry import TRANSFORMS
    cfg = Config.fromfile(OWN_IMAGES_TINY)
    rng = np.random.default_rng(0)
    shapes = {'large': (224, 224), 'wide': (224, 300), 'tiny': (32, 32)}
    pixels = {}
    for name, shape in shapes.items():
        pixels[name] = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        Image.fromarray(pixels[name]).save(tmp_path / f'{name}.png')
    for split in ('train', 'val', 'test'):
        transforms = [TRANSFORMS.build(t)
                      for t in cfg[f'{split}_dataloader'].dataset.pipeline]
        for name in shapes:
            data = dict(img_path=str(tmp_path / f'{name}.png'), gt_label=0)
            for transform in transforms:
                data = transform(data)
            assert tuple(data['inputs'].shape) == (3, 32, 32), (split, name)
            if name == 'tiny' and split != 'train':
                # BGR, as the loader gives it; unchanged pixel for pixel.
                assert (data['inputs'].numpy().transpose(1, 2, 0) ==
                        pixels['tiny'][..., ::-1]).all(), split


def test_readme_recipe_shortens_the_schedule():
    recipe = '--cfg-options train_cfg.max_epochs=5'
    with open(osp.join(ROOT, 'configs', 'promptkd', 'README.md'),
              encoding='utf-8') as f:
        assert recipe in f.read().replace('\n', ' ')
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs/promptkd/'
        'promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-dtd.py'))
    options = (kv.split('=') for kv in recipe.split()[1:])
    cfg.merge_from_dict({k: ast.literal_eval(v) for k, v in options})
    assert scheduled_lrs(cfg) == pytest.approx(
        dassl_lrs(0.005, 5), rel=1e-9, abs=1e-15)


def test_metafiles_list_every_config():
    """model-index.yml -> one metafile per folder -> every config once."""
    import yaml
    root = Path(__file__).resolve().parents[2]
    index = yaml.safe_load((root / 'model-index.yml').read_text())
    metafiles = sorted(index['Import'])
    folders = sorted(p.parent.relative_to(root).as_posix() + '/metafile.yml'
                     for p in (root / 'configs').glob('*/README.md'))
    assert metafiles == folders
    for metafile in metafiles:
        meta = yaml.safe_load((root / metafile).read_text())
        collections = {c['Name'] for c in meta['Collections']}
        listed = [m['Config'] for m in meta['Models']]
        assert len(listed) == len(set(listed)), metafile
        folder = (root / metafile).parent
        configs = sorted(p.relative_to(root).as_posix()
                         for p in folder.glob('*.py'))
        assert sorted(listed) == configs, metafile
        for model in meta['Models']:
            assert model['In Collection'] in collections
            assert model['Name'] == Path(model['Config']).stem


# CLIP's preprocessing on the pipeline's 0-255 scale, written out.
OPENAI_MEAN_STD = ([122.7709, 116.7460, 104.0937], [68.5005, 66.6322, 70.3236])


def _image_size(clip):
    """The input side of a CLIP weight source (from open_clip's config)."""
    import open_clip
    if 'model_cfg' in clip:
        vision = clip.model_cfg.vision_cfg
    else:
        name = clip.get('model_name') or osp.splitext(
            osp.basename(clip.openai_file))[0]
        vision = open_clip.get_model_config(name)['vision_cfg']
    return vision['image_size']


def _pipeline_sizes(cfg):
    """The side of the images each dataloader's pipeline ends with; None
    for a pipeline that does not resize (only the generated shapes, 32 px
    already, may do without)."""
    sizes = set()
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        for dataset in _datasets(loader.dataset) if loader else ():
            if not dataset.get('pipeline'):
                continue
            last = None
            for t in dataset.pipeline:
                size = t.get('crop_size') or (
                    t.scale if t.type in ('RandomResizedCrop', 'Resize')
                    else None)
                if size is not None:
                    last = size
            if last is None and dataset.get('type') == 'SyntheticShapes':
                continue
            sizes.add(last if last is None or isinstance(last, int) else
                      tuple(last))
    return {(s, s) if isinstance(s, int) else s for s in sizes}


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=osp.basename)
def test_each_model_gets_its_image_size_and_normalization(path):
    """Against open_clip's record of each pretrained CLIP: the student (or
    the stage-(a) CLIP) gets its own image side from every pipeline and
    the data preprocessor's mean / std, the teacher its own mean / std."""
    import open_clip
    cfg = Config.fromfile(path)
    model = cfg.model
    preprocessor = model.get('data_preprocessor') or dict(
        zip(('mean', 'std'), OPENAI_MEAN_STD))
    if 'clip' in model:  # a stage-(a) classifier
        roles = [(model.clip, preprocessor, True)]
    else:
        student = model.student
        roles = [(student.clip, preprocessor, True)] if 'clip' in student \
            else []
        teacher = model.get('teacher')
        if teacher and teacher.get('type') == 'TeacherEnsemble':
            # Members take the normalisation their weights declare unless
            # they name one.
            roles += [(m.teacher.clip, m.normalization, False)
                      for m in teacher.members if m.get('normalization')]
        elif teacher:
            roles.append((model.teacher.clip,
                          model.get('teacher_normalization') or preprocessor,
                          False))
    for clip, normalization, own_size in roles:
        if own_size:
            side = _image_size(clip)
            assert _pipeline_sizes(cfg) == {(side, side)}, clip
        if 'openai_file' in clip:
            expected = OPENAI_MEAN_STD
        elif 'pretrained' in clip:
            tag = open_clip.get_pretrained_cfg(clip.model_name,
                                               clip.pretrained)
            expected = [[255 * v for v in tag[k]] for k in ('mean', 'std')]
        else:
            continue  # weights of one's own: nothing recorded
        assert [list(normalization['mean']), list(normalization['std'])] == \
            [pytest.approx(v, abs=0.01) for v in expected], clip
