"""tools/misc/dry_run.py: every shipped config runs, on its own data layout.

Every config that brings something no earlier config brought (a model,
student, teacher, loss, runner, hooks or training data layout) runs the
whole dry run (train, resume, test, export) with the tiny CLIPs and
dataloader workers (at most two); every other config trains one epoch of
its miniature and tests it (``--quick``), loading in the main process. With
``--real-size``, random weights of the real architectures: the main
base-to-novel config runs every phase, and one config of every other family
trains one iteration and tests it with its own workers.
"""
import glob
import json
import os
import os.path as osp
import shutil
import sys

import pytest
import torch
from mmengine.config import Config

from mmpromptkd.utils import load_checkpoint_file
from tool_runs import REPO, run_tool, torch_threads
from tool_scripts import TOOLS, load_tool

DRY_RUN = load_tool('misc/dry_run.py')
CONFIGS = sorted(
    p for p in glob.glob(str(REPO / 'configs' / '**' / '*.py'),
                         recursive=True) if '_base_' not in p)
MAIN = str(REPO / 'configs' / 'promptkd' /
           'promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-dtd.py')
#: One config of each family other than MAIN's, run at real size: every
#: prompt learner of stage (a), zero-shot CLIP, and the distiller on the
#: ImageNet layout with a recorded teacher cache, with a MaPLe teacher, with
#: an mmpretrain student and with an EVA02 teacher, PE-Core (teacher and
#: student), MobileCLIP2, SigLIP2 (stage (a), and a zero-shot member of a
#: teacher ensemble of two families). Other datasets' layouts, and the
#: SigLIP2 distiller and PE-Core stage (a) (their towers are here already),
#: are dry-run with tiny models.
REAL_SIZE_FAMILIES = [
    str(REPO / 'configs' / name) for name in (
        'ivlp/ivlp_vit-l14_1xb8-16shot-20e_b2n-caltech101.py',
        'maple/maple_vit-l14_1xb8-16shot-20e_b2n-caltech101.py',
        'promptsrc/promptsrc_vit-l14_1xb8-16shot-20e_b2n-imagenet.py',
        'zsclip/zsclip_vit-l14_b2n-caltech101.py',
        'promptkd/promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-imagenet_'
        'teacher-cache.py',
        'promptkd/promptkd_vit-b16_vit-l14-maple_1xb8-20e_b2n-imagenet.py',
        'promptkd/promptkd_resnet50_vit-l14-promptsrc_1xb8-20e_b2n-'
        'imagenet.py',
        'promptkd/promptkd_vit-b16_eva02-l14-promptsrc_1xb8-20e_b2n-'
        'imagenet.py',
        'promptkd/promptkd_pe-core-b16_pe-core-l14-336-promptsrc_1xb8-20e_'
        'b2n-imagenet.py',
        'promptkd/promptkd_mobileclip2-s2_vit-l14-promptsrc_1xb8-20e_b2n-'
        'imagenet.py',
        'promptsrc/promptsrc_vit-l16-siglip2-256_1xb8-16shot-20e_b2n-'
        'imagenet.py',
        'promptkd/promptkd_vit-b16_ensemble-vit-l14-promptsrc-siglip2-l16-zs_'
        '1xb8-20e_b2n-dtd.py',
    )
]
pytestmark = pytest.mark.slow


def _layout_name(dataset_type: str) -> str:
    """The layout a dataset type reads: 'json-split' for the CoOp datasets
    with a JSON split file (DTD, Caltech101, ...), else the type itself."""
    from mmpromptkd.datasets import CoOpDataset
    from mmpromptkd.registry import DATASETS
    cls = DATASETS.get(dataset_type)
    if cls is not None and isinstance(cls, type) and \
            issubclass(cls, CoOpDataset) and cls.split_file:
        return 'json-split'
    return dataset_type


def _types(node) -> tuple:
    """The ``type`` of a config node and of everything under it (datasets
    by the layout they read)."""
    if isinstance(node, dict):
        own = str(node.get('type'))
        if 'data_root' in node:
            own = _layout_name(own.split('.')[-1])
        return tuple(sorted({own, *(
            t for v in node.values() for t in _types(v))} - {'None'}))
    if isinstance(node, list):
        return tuple(t for v in node for t in _types(v))
    return ()


def _settings(component) -> str:
    """A model component's config, less its weight files."""
    if not isinstance(component, dict):
        return str(component)
    return json.dumps({
        k: v
        for k, v in component.items() if k not in ('clip', 'checkpoint')
    }, sort_keys=True, default=str)


def _features(path: str) -> set:
    """What a config combines for training: model, student, teacher, loss,
    runner, hooks and the training data layout (every config's test split
    is tested by the quick run too)."""
    cfg = Config.fromfile(path)
    model = cfg.model.to_dict()
    features = {
        ('model', model.get('type'), model.get('distill_target'),
         model.get('shared_text_features')),
        ('student', _settings(model.get('student'))),
        ('teacher', _settings(model.get('teacher'))),
        ('loss', _settings(model.get('distill_loss'))),
        ('runner', cfg.get('runner_type')),
        ('hooks', _types([h.to_dict() for h in cfg.get('custom_hooks', [])])),
    }
    loader = cfg.get('train_dataloader')
    features.add(_types(loader.dataset.to_dict()) if loader else None)
    return features


def _split_configs():
    """The configs that bring a feature no earlier one has run every phase
    (each feature is run at least once); the others are built and trained.
    """
    full, quick, seen = [], [], set()
    for path in CONFIGS:
        features = _features(path)
        (quick if features <= seen else full).append(path)
        seen |= features
    return full, quick


FULL, QUICK = _split_configs()


@pytest.fixture(autouse=True)
def fast_serialisation(monkeypatch):
    """Skip the ``gc.collect`` of mmengine's dataset serialisation: with the
    objects that many runs in one process leave, it costs seconds per
    dataset and has no effect on what is tested."""
    import mmengine.dataset.base_dataset as mmengine_base_dataset
    monkeypatch.setattr(mmengine_base_dataset.gc, 'collect', lambda: 0)


@pytest.fixture(autouse=True)
def plain_config_text(monkeypatch):
    """The Runner logs its config formatted by yapf: seconds per run for
    the long cross-dataset configs, and nothing that is tested here."""
    monkeypatch.setattr(Config, 'pretty_text',
                        property(lambda cfg: json.dumps(cfg.to_dict(),
                                                        default=str)))


def _run(config: str, work_dir, tiny: bool = True, quick: bool = False,
         cfg_options: dict = None):
    with torch_threads(1):
        DRY_RUN.DryRun(config, str(work_dir), tiny=tiny, quick=quick,
                       cfg_options=cfg_options).run()


def _run_real_size(config: str, work_dir, quick: bool) -> str:
    """The dry run at real size in a process of its own, its output.

    Real-size models take GBs each, and what a run leaves behind in a
    long-lived process (not traced) added up over 15 runs beyond the 24 GB
    of the machine, while each run alone fits.
    """
    # Every core: CPUThreadsHook('auto') would leave one idle after the
    # previous run (it counts the load average); the phases prove shapes,
    # batch, workers and memory, whatever the thread count.
    cores = str(len(os.sched_getaffinity(0)))
    result = run_tool([
        sys.executable, TOOLS / 'misc' / 'dry_run.py', config, '--work-dir',
        work_dir, *(['--quick'] if quick else [])
    ], cwd=REPO, timeout=1800, env={'OMP_NUM_THREADS': cores})
    assert result.returncode == 0, result.stdout[-6000:]
    return result.stdout


@pytest.fixture
def real_size_dir(tmp_path):
    """A work dir removed after the test: the random weights of real
    architectures take GBs per config, and pytest keeps every test's
    temporary dir until the session ends (15 of them filled a disk)."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def _loaders(config: str) -> dict:
    cfg = Config.fromfile(config)
    return {
        name: cfg[name]
        for name in ('train_dataloader', 'val_dataloader', 'test_dataloader')
        if cfg.get(name)
    }


def _two_workers(config: str) -> dict:
    """``--cfg-options`` that cap the workers at two: processes, persistent
    workers and worker seeds as the config has them, fewer forks."""
    return {
        f'{name}.num_workers': 2
        for name, loader in _loaders(config).items()
        if loader.get('num_workers', 0) > 2
    }


def _in_process(config: str) -> dict:
    """``--cfg-options`` that load data in the main process: the configs
    of each family with their own workers run every phase above."""
    return {
        f'{name}.{key}': value
        for name in _loaders(config)
        for key, value in (('num_workers', 0), ('persistent_workers', False))
    }


@pytest.mark.parametrize('config', FULL, ids=osp.basename)
def test_one_config_of_each_family_runs_every_phase(config, tmp_path,
                                                    capsys):
    _run(config, tmp_path, cfg_options=_two_workers(config))
    printed = capsys.readouterr().out
    evaluation_only = 'zsclip' in osp.basename(config)
    phases = ['test'] if evaluation_only else ['train', 'resume', 'test']
    for phase in phases:
        assert f'  {phase} ' in printed
    if evaluation_only:
        return
    for name in ('train', 'resume'):
        assert glob.glob(str(tmp_path / name / '*_2.pth'))
    if Config.fromfile(config).model.type == 'PromptKDDistiller':
        assert (tmp_path / 'student.pth').is_file()


@pytest.mark.parametrize('config', QUICK, ids=osp.basename)
def test_every_other_config_trains_and_tests(config, tmp_path, capsys):
    _run(config, tmp_path, quick=True, cfg_options=_in_process(config))
    assert '  test ' in capsys.readouterr().out
    if 'zsclip' not in osp.basename(config):  # nothing to train
        assert glob.glob(str(tmp_path / 'train' / '*_1.pth'))


def test_every_config_is_covered():
    assert sorted(FULL + QUICK) == CONFIGS
    assert len(CONFIGS) > 100 and len(FULL) >= 10


def test_a_failure_is_the_last_line_and_names_the_phase(tmp_path, capsys):
    code = DRY_RUN.main([
        MAIN, '--tiny', '--quick', '--work-dir', str(tmp_path),
        '--cfg-options', 'optim_wrapper.optimizer.lr=-1.0'
    ])
    assert code == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f'dry run failed: {MAIN}: phase train: ')
    assert 'Invalid learning rate' in last
    assert str(tmp_path / 'train.log') in last


def test_a_used_work_dir_is_refused(tmp_path, capsys):
    (tmp_path / 'notes.txt').write_text('mine')
    assert DRY_RUN.main([MAIN, '--tiny', '--work-dir', str(tmp_path)]) == 1
    assert 'is not empty' in capsys.readouterr().out
    assert (tmp_path / 'notes.txt').read_text() == 'mine'


@pytest.mark.real_size
def test_real_size_main_config(real_size_dir):
    """Random ViT-B/16 and ViT-L/14 weights, 224 px, the config's own
    batch size and workers: every phase, each with its peak memory."""
    if torch.cuda.is_available():
        pytest.skip('measured on the CPU here')
    printed = _run_real_size(MAIN, real_size_dir, quick=False)
    for phase in ('train', 'resume', 'test', 'export'):
        assert f'  {phase} ' in printed
    checkpoint = load_checkpoint_file(str(real_size_dir / 'train' /
                                          'epoch_2.pth'))
    # Acceptance: a ViT-B/16 distiller checkpoint is under 10 MB.
    assert osp.getsize(real_size_dir / 'train' / 'epoch_2.pth') < 10e6
    assert not any(k.startswith('student.clip.')
                   for k in checkpoint['state_dict'])


@pytest.mark.real_size
@pytest.mark.parametrize('config', REAL_SIZE_FAMILIES, ids=osp.basename)
def test_real_size_family(config, real_size_dir):
    """Random weights of the config's own architectures, its batch size and
    workers: built, one training iteration, and tested."""
    if torch.cuda.is_available():
        pytest.skip('measured on the CPU here')
    printed = _run_real_size(config, real_size_dir, quick=True)
    assert '  test ' in printed
    if 'zsclip' not in osp.basename(config):
        assert '  train ' in printed
        assert glob.glob(str(real_size_dir / 'train' / '*_1.pth'))


def test_real_size_families_are_configs_of_other_families():
    assert all(osp.isfile(p) for p in REAL_SIZE_FAMILIES)
    assert MAIN not in REAL_SIZE_FAMILIES
    prefixes = {osp.basename(p).split('_')[0] for p in REAL_SIZE_FAMILIES}
    assert prefixes == {
        osp.basename(osp.dirname(p)) for p in CONFIGS
    }
