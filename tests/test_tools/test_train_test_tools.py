"""Tests of tools/train.py, tools/test.py and the launch scripts.

The command-line tools run as subprocesses on the tiny synthetic-shapes
config, so what a user runs is what is tested. Every run writes into
``tmp_path``; the working directory is ``tmp_path`` too, which also checks
that the tools find the package from a source checkout.
"""
import hashlib
import json
import multiprocessing
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest
import torch
from mmengine.config import Config

from mmpromptkd.engine.hooks import EpochSeedHook, epoch_seed
from mmpromptkd.utils import load_checkpoint_file
from run_cli import (check_work_dir_is_free, find_existing_checkpoints,
                     set_dataloader_defaults, setup_cpu_distributed)
from tool_runs import (CONFIG, REPO, TOOLS, call_tool, check_ok, data_options,
                       run_tool, train_cmd)
from tool_scripts import load_tool

# Keys of the trained parameters (and the projector's BN buffers).
TRAINED_PREFIXES = ('student.vision', 'projector.')


def _train_in_process(cmd):
    """A ``train_cmd`` run in this process (no interpreter start-up)."""
    return call_tool(cmd[1], cmd[2:])


def _trained_state(path: Path) -> Dict[str, torch.Tensor]:
    ckpt = load_checkpoint_file(str(path))
    return {
        k: v
        for k, v in ckpt['state_dict'].items()
        if k.startswith(TRAINED_PREFIXES) and v.is_floating_point()
    }


def _assert_states_close(a: Dict[str, torch.Tensor],
                         b: Dict[str, torch.Tensor],
                         atol: float,
                         rtol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    assert any(k.startswith('student.vision') for k in a)
    assert any(k.startswith('projector.') for k in a)
    for key in a:
        diff = (a[key] - b[key]).abs().double()
        bound = atol + rtol * b[key].abs().double()
        assert bool((diff <= bound).all()), \
            f'{key}: max abs difference {diff.max().item():.3g}'


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class TestTrainTest:

    @pytest.mark.slow
    def test_checkpoints_hold_no_frozen_weights(self, trained, shapes_root,
                                                tmp_path):
        checkpoint = load_checkpoint_file(str(trained / 'epoch_2.pth'))
        keys = set(checkpoint['state_dict'])
        assert not any(k.startswith('student.clip.') for k in keys)
        assert {'student.vision_ctx', 'projector.fc1.weight',
                'text_features'} <= keys
        record = checkpoint['meta']['frozen_weights']
        assert record['tensors'] > 0 and len(record['sha256']) == 64
        # The same architecture with other (random) CLIP weights.
        result = run_tool([
            sys.executable, TOOLS / 'test.py', CONFIG, trained /
            'epoch_2.pth', '--work-dir', tmp_path / 'other', '--cfg-options',
            *data_options(shapes_root), 'model.student.clip.checkpoint=None'
        ], cwd=tmp_path)
        assert result.returncode != 0
        assert 'was trained on other frozen weights than this model' in \
            result.stdout
        assert record['sha256'][:16] in result.stdout
        # The error's message is the last line, after the traceback.
        assert result.stdout.strip().splitlines()[-1].startswith(
            'test.py: error: CheckpointMismatchError: ')

    @pytest.mark.slow
    def test_the_log_states_the_effective_batch_and_lr(self, trained):
        # The fixture trains the 1xb32 config with batch 8 on one process.
        log = '\n'.join(p.read_text() for p in trained.glob('*/*.log'))
        assert ('Effective batch 8 = 8 per process x 1 process x 1 '
                "accumulation step; lr 0.001 (the config's, set for a batch "
                'of 32; not scaled)') in log
        assert ('the effective batch 8 differs from '
                'auto_scale_lr.base_batch_size=32') in log
        assert 'pass --auto-scale-lr to scale it linearly (lr 0.00025)' \
            in log

    def test_auto_scale_lr_flag(self):
        train = load_tool('train.py')
        cfg = Config.fromfile(str(CONFIG))
        args = train.parse_args([str(CONFIG), '--auto-scale-lr'])
        cfg = train.merge_args(cfg, args)
        assert cfg.auto_scale_lr == dict(base_batch_size=32, enable=True)
        cfg.pop('auto_scale_lr')
        with pytest.raises(ValueError, match='--auto-scale-lr needs'):
            train.merge_args(cfg, args)

    @pytest.mark.slow
    def test_train_then_test(self, trained, shapes_root, tmp_path):
        assert (trained / 'epoch_1.pth').is_file()
        assert (trained / 'epoch_2.pth').is_file()
        # Laid out as <dataset>/seed<N>/, as the aggregation tool expects.
        out = tmp_path / 'results' / 'shapes' / 'seed0' / 'metrics.json'
        log = check_ok(
            run_tool([
                sys.executable, TOOLS / 'test.py', CONFIG,
                trained / 'epoch_2.pth', '--work-dir', tmp_path / 'test',
                '--out', out, '--cfg-options', *data_options(shapes_root)
            ],
                 cwd=tmp_path))
        lines = log.splitlines()
        # The header, whatever the column widths (100.00 widens them).
        assert ['dataset', 'base', 'novel', 'HM', 'all'] in [
            [c.strip() for c in line.strip('|').split('|')]
            for line in lines if line.startswith('|')
        ]
        row = [line for line in lines if line.startswith('| SyntheticShapes')]
        assert len(row) == 1

        metrics = json.loads(out.read_text())
        keys = ('base', 'novel', 'hm', 'all')
        values = [metrics[f'b2n/{k}'] for k in keys]
        for value in values:
            assert isinstance(value, float) and 0 <= value <= 100
        base, novel, hm = values[:3]
        expected_hm = 2 * base * novel / (base + novel) if base + novel else 0
        assert hm == pytest.approx(expected_hm, abs=1e-9)
        cells = [c.strip() for c in row[0].strip('|').split('|')]
        assert cells == ['SyntheticShapes'] + [f'{v:.2f}' for v in values]

        summary = check_ok(
            run_tool([
                sys.executable, TOOLS / 'analysis' / 'aggregate_results.py',
                out
            ],
                 cwd=tmp_path))
        assert 'shapes' in summary and f'{base:.2f}' in summary

    @pytest.mark.slow
    def test_mmpretrain_flags(self, trained, shapes_root, tmp_path):
        """--show-dir / --amp of test.py and --no-validate of train.py."""
        shown = tmp_path / 'shown'
        log = check_ok(
            call_tool(TOOLS / 'test.py', [
                CONFIG, trained / 'epoch_2.pth', '--work-dir',
                tmp_path / 'test', '--show-dir', shown, '--amp',
                '--cfg-options', *data_options(shapes_root)
            ]))
        assert '| SyntheticShapes' in log
        assert sorted(p.suffix for p in shown.rglob('*.png'))
        work_dir = tmp_path / 'no_val'
        log = check_ok(
            _train_in_process(
                train_cmd(CONFIG, work_dir, shapes_root, 1, '--no-validate')))
        assert (work_dir / 'epoch_1.pth').is_file()
        assert 'Epoch(val)' not in log

    def test_dataloader_workers_end_with_the_run(self, shapes_root,
                                                 tmp_path):
        """An in-process run ends its workers, persistent ones included.

        Left to the garbage collector, a persistent iterator's queues are
        closed before it is shut down, and each worker then costs torch's
        5 s join timeout: the next phase of a dry run waited ~80 s.
        """
        before = {p.pid for p in multiprocessing.active_children()}
        workers = [
            f'{split}_dataloader.{key}'
            for split in ('train', 'val', 'test')
            for key in ('num_workers=2', 'persistent_workers=True')
        ]
        check_ok(
            _train_in_process(
                train_cmd(CONFIG, tmp_path / 'train', shapes_root, 1) +
                workers))
        check_ok(
            call_tool(TOOLS / 'test.py', [
                CONFIG, tmp_path / 'train' / 'epoch_1.pth', '--work-dir',
                tmp_path / 'test', '--cfg-options',
                *data_options(shapes_root), *workers
            ]))
        left = {p.pid for p in multiprocessing.active_children()} - before
        assert not left, f'dataloader workers still alive: {sorted(left)}'

    @pytest.mark.slow
    def test_resume_matches_uninterrupted_run(self, trained, shapes_root,
                                              tmp_path):
        work_dir = tmp_path / 'work_dir'
        # --resume without a checkpoint in the work directory starts afresh.
        first = check_ok(
            _train_in_process(
                train_cmd(CONFIG, work_dir, shapes_root, 1, '--resume')))
        assert f'--resume: {work_dir} holds no checkpoint; training starts ' \
            'from the beginning' in first
        assert (work_dir / 'epoch_1.pth').is_file()
        assert not (work_dir / 'epoch_2.pth').exists()

        resumed = check_ok(
            _train_in_process(
                train_cmd(CONFIG, work_dir, shapes_root, 2, '--resume')))
        latest = work_dir / 'epoch_1.pth'
        assert f'Auto resumed from the latest checkpoint {latest}' in resumed
        assert 'resumed epoch: 1, iter: 3' in resumed
        assert 'Epoch(train) [1]' not in resumed
        assert 'Epoch(train) [2]' in resumed
        # The random augmentation included: EpochSeedHook reseeds by epoch.
        _assert_states_close(
            _trained_state(work_dir / 'epoch_2.pth'),
            _trained_state(trained / 'epoch_2.pth'),
            atol=1e-6)

    @pytest.mark.slow
    def test_refuses_to_overwrite_checkpoints(self, trained, shapes_root,
                                              tmp_path):
        work_dir = tmp_path / 'work_dir'
        shutil.copytree(trained, work_dir)
        before = {p.name: _sha256(p) for p in work_dir.glob('*.pth')}
        result = _train_in_process(
            train_cmd(CONFIG, work_dir, shapes_root, 2))
        assert result.returncode != 0
        assert str(work_dir / 'epoch_2.pth') in result.stdout
        assert '--resume' in result.stdout and '--work-dir' in result.stdout
        assert 'Traceback' not in result.stdout
        assert {p.name: _sha256(p) for p in work_dir.glob('*.pth')} == before
        # Nothing was started: no new log folder next to the first run's.
        assert sorted(p.name for p in work_dir.iterdir()) == \
            sorted(p.name for p in trained.iterdir())

    @pytest.mark.slow
    def test_test_missing_checkpoint(self, tmp_path):
        missing = tmp_path / 'no_such_epoch.pth'
        result = run_tool([
            sys.executable, TOOLS / 'test.py', CONFIG, missing, '--work-dir',
            tmp_path / 'test'
        ],
                      cwd=tmp_path)
        assert result.returncode != 0
        assert str(missing) in result.stdout
        assert 'does not exist' in result.stdout


class TestDistributed:

    def test_a_closed_group_ends_the_process_normally(self, tmp_path):
        """After close_distributed the process ends as Python ends one:
        atexit handlers run and buffered output is flushed."""
        script = tmp_path / 'close.py'
        script.write_text(
            'import atexit, sys\n'
            'import torch.distributed as dist\n'
            f'sys.path[:0] = {[str(REPO), str(TOOLS / "misc")]!r}\n'
            'from run_cli import close_distributed\n'
            f'dist.init_process_group("gloo", init_method='
            f'"file://{tmp_path / "store"}", rank=0, world_size=1)\n'
            'atexit.register(lambda: open(sys.argv[1], "w").write("ran"))\n'
            'sys.stdout.write("buffered")\n'
            'close_distributed()\n'
            'assert not dist.is_initialized()\n')
        result = run_tool([sys.executable, script, tmp_path / 'atexit.txt'],
                          cwd=tmp_path)
        assert check_ok(result).endswith('buffered')
        assert (tmp_path / 'atexit.txt').read_text() == 'ran'

    @pytest.mark.slow
    def test_two_gloo_processes_match_one_process(self, shapes_root, tmp_path):
        # Without random augmentation both runs see the same global batches:
        # DefaultSampler gives rank r the indices r::2 of one permutation.
        config = tmp_path / 'deterministic.py'
        config.write_text(
            f'_base_ = {str(CONFIG)!r}\n'
            'model = dict(allow_untrained_teacher=True)\n'
            'train_dataloader = dict(\n'
            '    dataset=dict(pipeline={{_base_.test_pipeline}}))\n')
        single, double = tmp_path / 'single', tmp_path / 'double'
        cmd = train_cmd(config, double, shapes_root, 2, batch_size=4)
        # dist_train.sh CONFIG 2 [options]: GPUS means processes here.
        result = run_tool(
            ['bash', TOOLS / 'dist_train.sh', config, '2'] + cmd[3:],
            cwd=tmp_path,
            env=dict(PORT=str(_free_port())))
        log = check_ok(result)
        assert 'Distributed training: True' in log
        assert "backend='gloo'" in log
        # Two processes of batch 4 train with the batch of one of 8.
        assert ('Effective batch 8 = 4 per process x 2 processes x 1 '
                'accumulation step; lr 0.001') in log
        check_ok(
            run_tool(train_cmd(config, single, shapes_root, 2), cwd=tmp_path))
        # Warm-up epoch (lr 1e-5): equal up to float32 summation order.
        _assert_states_close(
            _trained_state(double / 'epoch_1.pth'),
            _trained_state(single / 'epoch_1.pth'),
            atol=1e-6)
        # Sums over two processes round differently from one: float32
        # relative differences (BatchNorm's running variance is ~1e2).
        _assert_states_close(
            _trained_state(double / 'epoch_2.pth'),
            _trained_state(single / 'epoch_2.pth'),
            atol=1e-5,
            rtol=1e-5)


@pytest.mark.slow
def test_mmpretrain_train_script(shapes_root, tmp_path):
    """mmpretrain's own tools/train.py runs our configs unchanged.

    Its defaults (e.g. ``persistent_workers=True``) must not break the tiny
    configs, and the hooks the method needs come from the config.
    """
    import mmpretrain
    script = Path(mmpretrain.__file__).parent / '.mim' / 'tools' / 'train.py'
    if not script.is_file():
        pytest.skip(f'{script} is not installed')
    work_dir = tmp_path / 'w'
    cmd = train_cmd(CONFIG, work_dir, shapes_root, 1)
    cmd[1] = script
    log = check_ok(run_tool(cmd, cwd=tmp_path))
    for hook in ('PromptKDTextFeaturesHook', 'EpochSeedHook',
                 'RandomStateHook', 'EmptyClassCheckHook'):
        assert hook in log
    assert (work_dir / 'epoch_1.pth').is_file()


def test_shell_scripts():
    for name in ('dist_train.sh', 'dist_test.sh', 'slurm_train.sh',
                 'slurm_test.sh'):
        script = TOOLS / name
        check_ok(run_tool(['bash', '-n', script], cwd=REPO))
        assert os.access(script, os.X_OK), f'{script} is not executable'


@pytest.mark.parametrize('name', ['slurm_train.sh', 'slurm_test.sh'])
def test_slurm_scripts_fail_fast_without_slurm(tmp_path, name):
    # srun exists, scontrol does not: an error at once, srun never called.
    (tmp_path / 'srun').write_text(f'#!/bin/sh\ntouch {tmp_path}/ran\n')
    (tmp_path / 'srun').chmod(0o755)
    env = dict(os.environ, PATH=f'{tmp_path}:/usr/bin:/bin')
    result = subprocess.run(
        ['bash', str(TOOLS / name), 'part', 'job', 'cfg.py', 'x'],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30)
    assert result.returncode == 1
    assert "'scontrol' is not on PATH" in result.stderr
    assert f'tools/dist_{name[len("slurm_"):]}' in result.stderr
    assert not (tmp_path / 'ran').exists()


class TestLaunchHelpers:

    def test_dataloader_defaults(self):
        cfg = Config(
            dict(
                train_dataloader=dict(num_workers=0, batch_size=2),
                val_dataloader=dict(num_workers=2),
                test_dataloader=dict(num_workers=2, persistent_workers=False)))
        set_dataloader_defaults(cfg)
        assert cfg.train_dataloader.persistent_workers is False
        assert cfg.train_dataloader.batch_size == 2
        assert cfg.val_dataloader.persistent_workers is True
        assert cfg.test_dataloader.persistent_workers is False
        assert cfg.val_dataloader.collate_fn == dict(type='default_collate')
        assert cfg.val_dataloader.pin_memory == torch.cuda.is_available()

        cfg = Config(
            dict(train_dataloader=dict(num_workers=2, pin_memory=True)))
        set_dataloader_defaults(
            cfg, pin_memory=False, persistent_workers=False)
        assert cfg.train_dataloader.pin_memory is False
        assert cfg.train_dataloader.persistent_workers is False

    def test_work_dir_guard(self, tmp_path):
        cfg = Config(dict(work_dir=str(tmp_path / 'run'), resume=False))
        check_work_dir_is_free(cfg)  # missing directory
        (tmp_path / 'run').mkdir()
        (tmp_path / 'run' / 'notes.txt').write_text('x')
        check_work_dir_is_free(cfg)  # no checkpoint
        (tmp_path / 'run' / 'epoch_3.pth').write_bytes(b'x')
        with pytest.raises(FileExistsError, match='epoch_3.pth'):
            check_work_dir_is_free(cfg)
        cfg.resume = True
        check_work_dir_is_free(cfg)

        # CheckpointHook(out_dir=D) writes to D/<last level of work_dir>.
        out_dir = tmp_path / 'ckpts'
        (out_dir / 'run2').mkdir(parents=True)
        (out_dir / 'run2' / 'last_checkpoint').write_text('x')
        cfg = Config(
            dict(
                work_dir=str(tmp_path / 'run2'),
                default_hooks=dict(
                    checkpoint=dict(
                        type='CheckpointHook', out_dir=str(out_dir)))))
        assert find_existing_checkpoints(cfg) == [
            osp.join(str(out_dir), 'run2', 'last_checkpoint')
        ]

    def test_no_process_group_without_launcher(self):
        cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
        assert setup_cpu_distributed(cfg, 'none') is False
        assert 'model_wrapper_cfg' not in cfg
        assert cfg.env_cfg.dist_cfg.backend == 'nccl'

    def test_epoch_seed_hook(self):
        # Declared by the config, once each: the tool adds no hooks.
        hooks = [h['type'] for h in Config.fromfile(CONFIG).custom_hooks]
        for name in ('EpochSeedHook', 'RandomStateHook',
                     'EmptyClassCheckHook'):
            assert hooks.count(name) == 1
        assert epoch_seed(0, 1) == epoch_seed(0, 1)
        assert len({epoch_seed(s, e) for s in (0, 1) for e in (0, 1)}) == 4

        class FakeRunner:
            seed, epoch = 7, 3

        hook = EpochSeedHook()
        hook.before_train_epoch(FakeRunner())
        first = (torch.rand(3), torch.randint(0, 10**6, (1, )).item())
        torch.rand(5)  # consumed differently before the next epoch
        hook.before_train_epoch(FakeRunner())
        second = (torch.rand(3), torch.randint(0, 10**6, (1, )).item())
        assert torch.equal(first[0], second[0]) and first[1] == second[1]
