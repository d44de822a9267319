"""Killed runs, crashed writes, non-finite losses and failing ranks.

Every scenario is a real run of ``tools/train.py`` (or of
``tools/dist_train.sh`` with two gloo processes) on the tiny CPU config,
with a fault injected by a hook loaded through ``custom_imports``
(``reliability_utils.FAULTS_SOURCE``). The scenarios are independent, so
the module starts them all at once in threads and each test checks one of
them: on a few shared cores this takes about as long as the slowest chain.

Schedule of the single-process runs: 24 training images, batch 4, so 6
iterations per epoch and 18 in 3 epochs; a checkpoint every 4 iterations
(``iter_4.pth``, ``iter_8.pth``, ...), most of them in the middle of an
epoch.
"""
import logging
import os
import os.path as osp
import random
import re
import shutil
import signal
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmpromptkd.engine.hooks import RandomStateHook
from mmpromptkd.engine.hooks.random_state_hook import _numpy_rng_state
from mmpromptkd.engine.hooks.safe_checkpoint_hook import checkpoint_folder
from mmpromptkd.engine.runner.safe_loading_runner import \
    choose_resume_checkpoint
from mmpromptkd.utils import (is_complete_checkpoint, load_checkpoint_file,
                              save_checkpoint_file)
from reliability_utils import (dist_train_cmd, free_port, kill_group,
                               max_difference, read_int, start,
                               subprocess_env, tail, train_cmd, trained_state,
                               wait_for, write_run_config)
import run_cli

# Seed of the random kill point (an iteration and a delay within it). With
# this seed the run resumes from an iteration checkpoint written at the end
# of an epoch, before the epoch was closed; the stalled write below resumes
# from one in the middle of an epoch.
KILL_SEED = 2031  # iteration 15 (+0.054 s): resumes from iter_12.pth
ITERS = 18  # 3 epochs x 6 iterations
FIRST_CHECKPOINT = 4
STALLED_CHECKPOINT = 12  # the write of iter_12.pth is stalled and killed
NON_FINITE_AT = 7  # first iteration with an infinite loss weight
RANK_FAULT_AT = 3
DEAD_RANK_BOUND_S = 120
RUN_TIMEOUT_S = 420


def _finish(proc: subprocess.Popen,
            log: Path,
            timeout: float = RUN_TIMEOUT_S) -> int:
    """Wait for a run; kill it and fail with its log after ``timeout``."""
    try:
        return proc.wait(timeout=timeout)
    except Exception:
        kill_group(proc)
        raise AssertionError(f'the run did not end in {timeout} s:\n'
                             f'{tail(log)}')


def _kill_processes_with(token: str) -> List[int]:
    """SIGKILL the processes whose command line contains ``token``.

    ``token`` is a path under this test's temporary folder, so only the
    processes this module started match (torchrun's workers included).
    """
    killed = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f'/proc/{entry}/cmdline', 'rb') as f:
                cmdline = f.read().replace(b'\0', b' ').decode(
                    errors='replace')
        except OSError:
            continue
        if token in cmdline:
            try:
                os.kill(int(entry), signal.SIGKILL)
                killed.append(int(entry))
            except ProcessLookupError:
                pass
    return killed


def _checkpoints(work_dir: Path) -> Dict[str, int]:
    return {p.name: p.stat().st_size for p in work_dir.glob('*.pth')}


class _Scenarios:
    """Starts the fault scenarios in threads; tests wait for their own."""

    def __init__(self, root: Path, data_root: Path, plugin_dir: Path):
        self.root = root
        self.data_root = data_root
        self.env = subprocess_env(plugin_dir)
        self.procs = []
        self.tokens: List[str] = []
        self.pool = ThreadPoolExecutor(max_workers=6)
        self.futures: Dict[str, Future] = {}

    def _config(self, name: str, **kwargs) -> Path:
        folder = self.root / name
        folder.mkdir()
        self.tokens.append(str(folder))
        return write_run_config(folder / f'{name}.py', self.data_root,
                                folder / 'state', **kwargs)

    def _fault_free(self, config: Path) -> Path:
        """The config of a run without its fault, to resume it."""
        return write_run_config(config.parent / 'resume.py', self.data_root,
                                config.parent / 'state')

    def _start(self, cmd, log: Path, env=None):
        proc = start(cmd, self.root, env or self.env, log)
        self.procs.append(proc)
        return proc

    def submit_all(self) -> None:
        for name in ('reference', 'random_kill', 'stalled_write',
                     'non_finite', 'dead_rank'):
            self.futures[name] = self.pool.submit(getattr(self, name))

    def result(self, name: str) -> dict:
        return self.futures[name].result()

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                kill_group(proc)
        for token in self.tokens:
            _kill_processes_with(token)
        self.pool.shutdown(wait=True, cancel_futures=True)

    # -- the scenarios ---------------------------------------------------
    def reference(self) -> dict:
        """An uninterrupted run: the weights every resumed run must hit."""
        config = self._config('reference')
        work_dir = config.parent / 'work_dir'
        log = config.parent / 'train.log'
        code = _finish(self._start(train_cmd(config, work_dir), log), log)
        assert code == 0, tail(log)
        return dict(work_dir=work_dir)

    def random_kill(self) -> dict:
        """SIGKILL at a seeded random point after the first checkpoint.

        The point is an iteration (reported by the injection hook before it
        starts) plus a random delay, so the kill lands anywhere in it:
        data loading, forward, backward or a checkpoint write. Then
        ``--resume``.
        """
        rng = random.Random(KILL_SEED)
        target = rng.randint(FIRST_CHECKPOINT + 1, ITERS - 2)
        delay = rng.uniform(0.0, 0.3)
        config = self._config('random_kill')
        folder = config.parent
        work_dir, log = folder / 'work_dir', folder / 'train.log'
        proc = self._start(train_cmd(config, work_dir), log)
        wait_for(lambda: read_int(folder / 'state' / 'progress') >= target,
                 proc, RUN_TIMEOUT_S, f'iteration {target}', log)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        code = proc.wait()
        killed_in = read_int(folder / 'state' / 'progress')
        at_kill = _checkpoints(work_dir)
        resume_log = folder / 'resume.log'
        resumed = _finish(
            self._start(
                train_cmd(self._fault_free(config), work_dir, '--resume'),
                resume_log), resume_log)
        return dict(target=target, delay=delay, code=code,
                    killed_in=killed_in, at_kill=at_kill,
                    resumed=resumed, work_dir=work_dir,
                    log=resume_log.read_text())

    def stalled_write(self) -> dict:
        """SIGKILL while half of ``iter_12.pth`` is on disk, then resume.

        The same directory with an emptied ``last_checkpoint`` (a kill
        while mmengine rewrites it) is resumed as well.
        """
        config = self._config(
            'stalled_write', fault=dict(stall_write_at=STALLED_CHECKPOINT))
        folder = config.parent
        work_dir, log = folder / 'work_dir', folder / 'train.log'
        proc = self._start(train_cmd(config, work_dir), log)
        marker = folder / 'state' / 'writing'
        wait_for(marker.exists, proc, RUN_TIMEOUT_S,
                 f'the write of iter_{STALLED_CHECKPOINT}.pth', log)
        proc.send_signal(signal.SIGKILL)
        code = proc.wait()
        state = dict(
            code=code,
            writing=Path(marker.read_text()),
            files=sorted(p.name for p in work_dir.iterdir()),
            last_checkpoint=(work_dir / 'last_checkpoint').read_text(),
            complete={
                p.name: is_complete_checkpoint(str(p))
                for p in work_dir.glob('*.pth')
            },
            loaded={
                p.name: trained_state(p)
                for p in sorted(work_dir.glob('*.pth'))
            })
        # The same state, but killed while last_checkpoint was rewritten:
        # mmengine truncates it with a plain open() before writing.
        empty_dir = folder / 'work_dir_empty_marker'
        shutil.copytree(work_dir, empty_dir)
        (empty_dir / 'last_checkpoint').write_text('')
        logs = (folder / 'resume.log', folder / 'resume_empty.log')
        resume = self._fault_free(config)
        procs = [
            self._start(train_cmd(resume, d, '--resume'), lg)
            for d, lg in zip((work_dir, empty_dir), logs)
        ]
        state.update(
            resumed=_finish(procs[0], logs[0]),
            resumed_empty=_finish(procs[1], logs[1]),
            log=logs[0].read_text(),
            log_empty=logs[1].read_text(),
            work_dir=work_dir,
            empty_dir=empty_dir)
        return state

    def non_finite(self) -> dict:
        """The loss weight becomes inf at iteration 7, after iter_4.pth."""
        config = self._config(
            'non_finite', fault=dict(poison_at=NON_FINITE_AT), max_epochs=2)
        work_dir = config.parent / 'work_dir'
        log = config.parent / 'train.log'
        code = _finish(self._start(train_cmd(config, work_dir), log), log)
        return dict(code=code, log=log.read_text(), work_dir=work_dir)

    def dead_rank(self) -> dict:
        """Two gloo processes; rank 1 calls ``os._exit(3)`` at iteration 3.
        """
        config = self._config(
            'dead_rank', fault=dict(die_at=RANK_FAULT_AT), max_epochs=2)
        folder = config.parent
        log = folder / 'train.log'
        env = dict(self.env, PORT=str(free_port()))
        code = _finish(
            self._start(
                dist_train_cmd(config, folder / 'work_dir'), log, env), log)
        ended = time.time()
        time.sleep(1.0)  # let the workers' exits settle
        survivors = _kill_processes_with(str(config))
        died = folder / 'state' / 'died'
        return dict(code=code, ended=ended, log=log.read_text(),
                    died=float(died.read_text()) if died.exists() else None,
                    survivors=survivors)


@pytest.fixture(scope='module')
def scenarios(shapes_root, plugin_dir, tmp_path_factory):
    runs = _Scenarios(
        tmp_path_factory.mktemp('crash_recovery'), shapes_root, plugin_dir)
    runs.submit_all()
    yield runs
    runs.close()


def _reference_final(scenarios) -> dict:
    return trained_state(
        scenarios.result('reference')['work_dir'] / f'iter_{ITERS}.pth')


@pytest.mark.slow  # one uninterrupted reference run for the class
class TestKilledTraining:

    def test_sigkill_at_random_point_then_resume_is_exact(self, scenarios):
        run = scenarios.result('random_kill')
        what = (f'killed in iteration {run["killed_in"]} (target '
                f'{run["target"]}, +{run["delay"]:.3f} s, seed {KILL_SEED})')
        assert run['code'] == -signal.SIGKILL, what
        assert run['killed_in'] < ITERS, what
        assert f'iter_{FIRST_CHECKPOINT}.pth' in run['at_kill'], what
        assert run['resumed'] == 0, run['log'][-6000:]
        match = re.search(r'resumed epoch: (\d+), iter: (\d+)', run['log'])
        assert match, run['log'][-6000:]
        assert int(match.group(2)) >= FIRST_CHECKPOINT
        diff = max_difference(
            trained_state(run['work_dir'] / f'iter_{ITERS}.pth'),
            _reference_final(scenarios))
        assert diff <= 1e-6, f'{what}: max abs difference {diff:.3g}'

    def test_sigkill_while_writing_a_checkpoint(self, scenarios):
        run = scenarios.result('stalled_write')
        assert run['code'] == -signal.SIGKILL
        # The stalled write went to a temporary file, never to the name.
        name = f'iter_{STALLED_CHECKPOINT}.pth'
        assert run['writing'].name.startswith(f'.mmpromptkd-{name}.')
        assert run['writing'].name.endswith('.tmp')
        assert name not in run['files']
        # Every checkpoint on disk is complete and loads; the earlier ones
        # survived, and last_checkpoint names the newest of them.
        assert sorted(run['complete']) == ['iter_4.pth', 'iter_8.pth']
        assert all(run['complete'].values())
        assert set(run['loaded']) == {'iter_4.pth', 'iter_8.pth'}
        assert run['last_checkpoint'] == str(run['work_dir'] / 'iter_8.pth')
        # The half-written temporary file is not mistaken for a checkpoint.
        assert not is_complete_checkpoint(str(run['writing']))
        # --resume continues from iter_8 (mid-epoch 2) to the same weights.
        assert run['resumed'] == 0, run['log'][-6000:]
        assert 'resumed epoch: 1, iter: 8' in run['log']
        assert 'Resuming epoch 2 after batch 2 of 6' in run['log']
        diff = max_difference(
            trained_state(run['work_dir'] / f'iter_{ITERS}.pth'),
            _reference_final(scenarios))
        assert diff <= 1e-6, f'max abs difference {diff:.3g}'

    def test_empty_last_checkpoint_falls_back_to_newest(self, scenarios):
        run = scenarios.result('stalled_write')
        log = run['log_empty']
        assert run['resumed_empty'] == 0, log[-6000:]
        expected = run['empty_dir'] / 'iter_8.pth'
        assert 'last_checkpoint is empty; resuming from the newest ' \
            f'complete checkpoint {expected}' in log
        assert 'resumed epoch: 1, iter: 8' in log
        diff = max_difference(
            trained_state(run['empty_dir'] / f'iter_{ITERS}.pth'),
            _reference_final(scenarios))
        assert diff <= 1e-6, f'max abs difference {diff:.3g}'


class TestNonFiniteLoss:

    @pytest.mark.slow
    def test_run_stops_and_last_good_checkpoint_loads(self, scenarios):
        run = scenarios.result('non_finite')
        assert run['code'] != 0, run['log'][-6000:]
        # The total ('loss') is checked first; both are infinite.
        assert re.search(
            rf'loss(_kd)? is inf at iteration {NON_FINITE_AT} \(epoch 2, '
            r'batch 1\); stopping', run['log']), run['log'][-6000:]
        assert 'FloatingPointError' in run['log']
        work_dir = run['work_dir']
        # Nothing was written at or after the bad iteration.
        assert sorted(p.name for p in work_dir.glob('*.pth')) == \
            ['iter_4.pth']
        assert (work_dir / 'last_checkpoint').read_text() == \
            str(work_dir / 'iter_4.pth')
        ckpt = load_checkpoint_file(str(work_dir / 'iter_4.pth'))
        assert ckpt['meta']['iter'] == 4
        state = trained_state(work_dir / 'iter_4.pth')
        assert all(v.isfinite().all() for v in state.values())


class TestDistributedFaults:

    @pytest.mark.slow
    def test_dead_rank_ends_the_job(self, scenarios):
        run = scenarios.result('dead_rank')
        assert run['died'] is not None, run['log'][-6000:]
        assert run['code'] != 0, run['log'][-6000:]
        assert 'Distributed training: True' in run['log']
        elapsed = run['ended'] - run['died']
        assert elapsed < DEAD_RANK_BOUND_S, f'{elapsed:.1f} s'
        assert 'exitcode  : 3' in run['log'], run['log'][-6000:]
        assert run['survivors'] == [], 'processes outlived the job'

    def test_collective_timeout_comes_from_the_config(self, monkeypatch):
        """A rank that hangs instead of dying is only ended by a timeout.

        torchrun cannot tell a hung rank from a slow one; the others wait
        in their next collective until the gloo timeout, which must be the
        config's ``env_cfg.dist_cfg.timeout`` (seconds, as for mmengine's
        own launchers). With it passed, a run whose rank 1 sleeps at
        iteration 3 under ``timeout=15`` ends about 20 s later with a
        non-zero code ("Timed out waiting 15000ms" on rank 0).
        """
        calls = []

        def fake_init(launcher, timeout_s=1800):
            calls.append(timeout_s)
            return False

        monkeypatch.setattr(run_cli, 'init_cpu_distributed', fake_init)
        cfg = Config(dict(env_cfg=dict(dist_cfg=dict(timeout=15))))
        run_cli.setup_cpu_distributed(cfg, 'pytorch')
        assert calls == [15]


class TestResumeCheckpointChoice:
    """What an auto-resume resumes from, in work directories left by
    crashes."""

    LOGGER = logging.getLogger('test_resume_checkpoint_choice')

    @staticmethod
    def _save(path: Path, mtime: float, truncate: bool = False) -> Path:
        torch.save({'meta': {}, 'state_dict': {'w': torch.ones(4)}}, path)
        if truncate:
            path.write_bytes(path.read_bytes()[:100])
        os.utime(path, (mtime, mtime))
        return path

    def _choose(self, work_dir: Path, folder: Path = None):
        return choose_resume_checkpoint(str(work_dir),
                                        str(folder or work_dir), self.LOGGER)

    def test_choices(self, tmp_path):
        work_dir = tmp_path / 'work_dir'
        work_dir.mkdir()
        marker = work_dir / 'last_checkpoint'
        # No record: a fresh run, left to mmengine.
        assert self._choose(work_dir) == (True, None)
        # A record of a complete file is followed.
        first = self._save(work_dir / 'iter_4.pth', 1000)
        second = self._save(work_dir / 'iter_8.pth', 2000)
        newest_bad = self._save(work_dir / 'iter_12.pth', 3000, True)
        marker.write_text(str(first))
        assert self._choose(work_dir) == (True, None)
        # Empty, or naming a truncated or missing file: the newest complete
        # checkpoint instead.
        for text in ('', str(newest_bad), str(work_dir / 'iter_16.pth')):
            marker.write_text(text)
            assert self._choose(work_dir) == (True, str(second)), text
        # No complete checkpoint at all: start afresh instead of failing.
        first.unlink()
        second.unlink()
        marker.write_text('')
        assert self._choose(work_dir) == (False, None)

    def test_checkpoints_under_the_hooks_out_dir(self, tmp_path):
        work_dir = tmp_path / 'runs' / 'run2'
        work_dir.mkdir(parents=True)
        (work_dir / 'last_checkpoint').write_text('')
        # CheckpointHook(out_dir=D) writes to D/<last level of work_dir>.
        folder = checkpoint_folder(str(work_dir), str(tmp_path / 'ckpts'))
        assert folder == str(tmp_path / 'ckpts' / 'run2')
        os.makedirs(folder)
        newest = self._save(Path(folder) / 'epoch_2.pth', 2000)
        self._save(work_dir / 'epoch_1.pth', 1000)
        assert self._choose(work_dir, folder) == (True, str(newest))


def test_truncated_checkpoint_is_named(tmp_path):
    """Reading a cut-short or empty checkpoint names the file."""
    path = tmp_path / 'iter_4.pth'
    torch.save({'state_dict': {'w': torch.ones(64)}}, path)
    whole = path.read_bytes()
    assert is_complete_checkpoint(str(path))
    path.write_bytes(whole[:len(whole) // 2])
    assert not is_complete_checkpoint(str(path))
    with pytest.raises(RuntimeError, match='not a complete checkpoint') as e:
        load_checkpoint_file(str(path))
    assert str(path) in str(e.value)
    path.write_bytes(b'')
    with pytest.raises(EOFError, match='empty or cut short') as e:
        load_checkpoint_file(str(path))
    assert str(path) in str(e.value)


def _draws() -> tuple:
    """One draw of each generator the hook saves."""
    return (torch.rand(3), float(np.random.rand()), random.random())


def _rng_worker(rank: int, world_size: int, port: int, folder: str) -> None:
    """Save at iteration 5 as a Runner does, draw, disturb, load, restore."""
    import torch.distributed as dist
    from mmengine.hooks import CheckpointHook
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
        world_size=world_size)
    try:
        torch.manual_seed(100 + rank)
        np.random.seed(100 + rank)
        random.seed(100 + rank)
        hook = RandomStateHook()
        # After iteration index 4, CheckpointHook(interval=5) saves iter_5.
        runner = SimpleNamespace(
            iter=4, max_iters=100, hooks=[
                hook, CheckpointHook(interval=5, by_epoch=False)
            ], logger=logging.getLogger('test_rng_worker'))
        hook.after_train_iter(runner, batch_idx=4)  # every rank
        path = osp.join(folder, 'iter_5.pth')
        if rank == 0:  # Runner.save_checkpoint is master-only
            checkpoint = {'meta': {'iter': 5}}
            hook.before_save_checkpoint(runner, checkpoint)
            save_checkpoint_file(checkpoint, path)
        after_save = _draws()
        dist.barrier()
        torch.manual_seed(7)  # the resumed process starts elsewhere
        np.random.seed(7)
        random.seed(7)
        runner.iter = 5
        hook.after_load_checkpoint(runner, load_checkpoint_file(path))
        hook.after_skip_trained_batches(runner)
        torch.save(dict(after_save=after_save, restored=_draws()),
                   osp.join(folder, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


class TestRandomStatesPerRank:
    """Each process of a resumed multi-process run gets its own states."""

    @pytest.mark.slow
    def test_two_processes_restore_their_own_states(self, tmp_path):
        import torch.multiprocessing as mp
        mp.spawn(_rng_worker, args=(2, free_port(), str(tmp_path)), nprocs=2,
                 join=True)
        results = [
            torch.load(tmp_path / f'rank{r}.pth', weights_only=True)
            for r in range(2)
        ]
        # The ranks' generators differ, so rank 0's states on both would
        # fail below.
        assert not torch.equal(results[0]['after_save'][0],
                               results[1]['after_save'][0])
        for rank, result in enumerate(results):
            expected, restored = result['after_save'], result['restored']
            assert torch.equal(restored[0], expected[0]), rank
            assert restored[1:] == expected[1:], rank
        checkpoint = load_checkpoint_file(str(tmp_path / 'iter_5.pth'))
        states = checkpoint['meta']['rng_states']
        assert states['world_size'] == 2 and len(states['ranks']) == 2

    def test_other_process_count_warns_and_leaves_states(self, caplog):
        hook = RandomStateHook()
        logger = logging.getLogger('test_rng_mismatch')
        runner = SimpleNamespace(iter=5, logger=logger, hooks=[])
        checkpoint = {'meta': {'iter': 5}}
        hook.before_save_checkpoint(runner, checkpoint)
        states = checkpoint['meta']['rng_states']
        states['world_size'] = 2
        states['ranks'] = states['ranks'] * 2
        hook.after_load_checkpoint(runner, checkpoint)
        torch.manual_seed(3)
        expected = torch.rand(2)
        torch.manual_seed(3)
        with caplog.at_level(logging.WARNING, logger='test_rng_mismatch'):
            hook.after_skip_trained_batches(runner)
        assert torch.equal(torch.rand(2), expected)
        assert 'saved by 2 process(es), this run has 1' in caplog.text

    def test_single_process_checkpoint_of_earlier_versions(self):
        hook = RandomStateHook()
        runner = SimpleNamespace(iter=5, logger=logging.getLogger('t'))
        torch.manual_seed(11)
        old_format = dict(
            iter=5, world_size=1, python=random.getstate(),
            numpy=_numpy_rng_state(), torch=torch.get_rng_state())
        expected = _draws()
        hook.after_load_checkpoint(runner,
                                   {'meta': {'rng_states': old_format}})
        hook.after_skip_trained_batches(runner)
        restored = _draws()
        assert torch.equal(restored[0], expected[0])
        assert restored[1:] == expected[1:]

    def test_checkpoint_off_schedule_warns(self, monkeypatch, caplog):
        # A multi-process checkpoint saved when CheckpointHook's rule did not
        # gather (e.g. a best checkpoint) holds no states to restore.
        from mmpromptkd.engine.hooks import random_state_hook
        monkeypatch.setattr(random_state_hook, 'get_world_size', lambda: 2)
        monkeypatch.setattr(random_state_hook, 'get_rank', lambda: 0)
        hook = RandomStateHook()
        logger = logging.getLogger('test_rng_off_schedule')
        runner = SimpleNamespace(iter=5, logger=logger, hooks=[])
        checkpoint = {'meta': {'iter': 5}}
        hook.before_save_checkpoint(runner, checkpoint)
        assert checkpoint['meta']['rng_states']['ranks'] == []
        hook.after_load_checkpoint(runner, checkpoint)
        with caplog.at_level(logging.WARNING, logger='test_rng_off_schedule'):
            hook.after_skip_trained_batches(runner)
        assert 'holds no random states of the other processes' in caplog.text
