"""Tests of tools/b2n_campaign.py: the plan, skipping and resuming, --dry.

The unit tests fake the files that runs write (checkpoints, results.json)
in temporary folders and never train; the end-to-end test runs the tiny
synthetic-shapes configs, is killed once and continues.
"""
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tool_runs import run_tool
from tool_scripts import REPO, TOOLS, load_tool

campaign = load_tool('b2n_campaign.py')
agg = load_tool('analysis/aggregate_results.py')

DATASETS = [
    'caltech101', 'dtd', 'eurosat', 'fgvc-aircraft', 'food101', 'imagenet',
    'oxford-flowers', 'oxford-pets', 'stanford-cars', 'sun397', 'ucf101'
]
TINY = [
    '--teacher-configs',
    str(REPO / 'configs/promptsrc/promptsrc_tiny-clip_*_b2n-{dataset}.py'),
    '--student-configs',
    str(REPO / 'configs/promptkd/promptkd_tiny-clip_1xb32-*_b2n-{dataset}.py')
]


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    # Commands name files relative to the current directory when inside it.
    monkeypatch.chdir(REPO)


def plan(*argv):
    """The planned steps of the campaign given by ``argv``."""
    return campaign.Campaign(campaign.parse_args([str(a)
                                                  for a in argv])).plan()


def step(steps, stage, dataset, seed):
    """The one step of ``stage``, ``dataset``, ``seed``."""
    found = [
        s for s in steps
        if (s.stage, s.dataset, s.seed) == (stage, dataset, seed)
    ]
    assert len(found) == 1
    return found[0]


def touch(path: Path, text: str = '') -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def options_of(command):
    """The ``KEY=VALUE`` items after ``--cfg-options`` as a dict."""
    items = command[command.index('--cfg-options') + 1:]
    return dict(item.split('=', 1) for item in items)


class TestFindConfigs:

    def test_the_eleven_datasets(self):
        teachers = campaign.find_configs(campaign.DEFAULT_TEACHER_CONFIGS)
        students = campaign.find_configs(campaign.DEFAULT_STUDENT_CONFIGS)
        assert list(teachers) == DATASETS
        assert list(students) == DATASETS
        assert Path(teachers['dtd']).name == \
            'promptsrc_vit-l14_1xb8-16shot-20e_b2n-dtd.py'
        # Variants (..._b2n-dtd_reference-selection.py) are not datasets.
        assert Path(students['dtd']).name == \
            'promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-dtd.py'

    def test_variants_of_one_dataset_are_left_out(self):
        found = campaign.find_configs(TINY[3])
        assert list(found) == ['synthetic-shapes']
        assert Path(found['synthetic-shapes']).name == \
            'promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py'

    def test_two_configs_for_one_dataset(self, tmp_path):
        touch(tmp_path / 'x_1e_b2n-dtd.py')
        touch(tmp_path / 'x_2e_b2n-dtd.py')
        with pytest.raises(ValueError, match='two configs match.*x_1e_b2n'):
            campaign.find_configs(str(tmp_path / 'x_*_b2n-{dataset}.py'))

    def test_pattern_without_dataset(self):
        with pytest.raises(ValueError, match='must contain "{dataset}"'):
            campaign.find_configs('configs/promptkd/*.py')


class TestPlan:

    def test_eleven_datasets_by_three_seeds_stage_by_stage(self, tmp_path):
        steps = plan('--work-root', tmp_path)
        assert len(steps) == 99
        assert [s.stage for s in steps] == ['a'] * 33 + ['b'] * 33 + \
            ['c'] * 33
        assert [(s.dataset, s.seed) for s in steps[:33]] == [
            (d, k) for d in DATASETS for k in (1, 2, 3)
        ]
        assert [s.status for s in steps] == ['todo'] * 33 + ['after'] * 66

    def test_commands_of_each_stage(self, tmp_path):
        steps = plan('--work-root', tmp_path, '--datasets', 'dtd')
        root = tmp_path
        a, b, c = (step(steps, s, 'dtd', 2) for s in 'abc')
        teacher = root / 'teachers/dtd/seed2/epoch_20.pth'
        student = root / 'students/dtd/seed2/epoch_20.pth'
        results = root / 'results/dtd/seed2/results.json'
        assert a.command[:6] == [
            campaign.python_command(), 'tools/train.py',
            'configs/promptsrc/promptsrc_vit-l14_1xb8-16shot-20e_b2n-dtd.py',
            '--work-dir', str(root / 'teachers/dtd/seed2'), '--cfg-options'
        ]
        # The seed of the run, which the few-shot draws follow.
        assert options_of(a.command) == {'randomness.seed': '2'}
        assert a.output == str(teacher)
        assert b.command[1:5] == [
            'tools/train.py',
            'configs/promptkd/'
            'promptkd_vit-b16_vit-l14-promptsrc_1xb8-20e_b2n-dtd.py',
            '--work-dir', str(root / 'students/dtd/seed2')
        ]
        # The distiller's dataloaders draw no few-shot subset.
        assert options_of(b.command) == {
            'randomness.seed': '2',
            'model.teacher.checkpoint': str(teacher)
        }
        assert b.output == str(student)
        assert c.command[1:] == [
            'tools/test.py', b.command[2], str(student), '--work-dir',
            str(root / 'results/dtd/seed2'), '--out',
            str(results), '--cfg-options',
            f'model.teacher.checkpoint={teacher}'
        ]
        assert c.output == str(results)

    def test_pytorch_launcher(self, tmp_path):
        steps = plan('--work-root', tmp_path, '--datasets', 'dtd', '--seeds',
                     1, '--launcher', 'pytorch', '--gpus', 8)
        a, b, c = steps
        assert a.command[:6] == [
            'bash', 'tools/dist_train.sh',
            'configs/promptsrc/promptsrc_vit-l14_1xb8-16shot-20e_b2n-dtd.py',
            '8', '--work-dir',
            str(tmp_path / 'teachers/dtd/seed1')
        ]
        assert c.command[:5] == [
            'bash', 'tools/dist_test.sh', c.command[2], b.output, '8'
        ]
        assert a.env == {}

    def test_slurm_launcher(self, tmp_path):
        a, b, c = plan('--work-root', tmp_path, '--datasets', 'dtd',
                       '--seeds', 3, '--launcher', 'slurm', '--partition',
                       'gpu', '--job-name', 'kd', '--gpus', 4)
        assert a.command[:6] == [
            'bash', 'tools/slurm_train.sh', 'gpu', 'kd-a-dtd-seed3',
            a.command[4], str(tmp_path / 'teachers/dtd/seed3')
        ]
        assert a.env == {'GPUS': '4', 'GPUS_PER_NODE': '4'}
        assert a.shell().startswith(
            'GPUS=4 GPUS_PER_NODE=4 bash tools/slurm_train.sh gpu ')
        assert c.command[:6] == [
            'bash', 'tools/slurm_test.sh', 'gpu', 'kd-c-dtd-seed3',
            c.command[4], b.output
        ]

    def test_slurm_needs_a_partition(self, tmp_path, capsys):
        assert campaign.main(['--launcher', 'slurm', '--dry']) == 1
        assert capsys.readouterr().err.strip().splitlines()[-1] == \
            'b2n_campaign.py: error: --launcher slurm needs --partition'

    def test_cfg_options_reach_their_stages(self, tmp_path):
        steps = plan('--work-root', tmp_path, '--datasets', 'eurosat',
                     '--seeds', 1, '--cfg-options', 'train_cfg.max_epochs=2',
                     '--teacher-cfg-options', 'train_dataloader.batch_size=4',
                     '--student-cfg-options', 'model.distill_loss.tau=2.0')
        a, b, c = steps
        assert options_of(a.command)['train_cfg.max_epochs'] == '2'
        assert options_of(a.command)['train_dataloader.batch_size'] == '4'
        assert 'model.distill_loss.tau' not in options_of(a.command)
        for s in (b, c):
            assert options_of(s.command)['train_cfg.max_epochs'] == '2'
            assert options_of(s.command)['model.distill_loss.tau'] == '2.0'
        # The final checkpoint follows the epochs the runs are given.
        assert a.output == str(tmp_path / 'teachers/eurosat/seed1/epoch_2.pth')
        assert options_of(b.command)['model.teacher.checkpoint'] == a.output

    @pytest.mark.parametrize('key', [
        'randomness.seed', 'model.teacher.checkpoint',
        'train_dataloader.dataset.seed'
    ])
    def test_keys_the_campaign_sets_are_refused(self, key, capsys):
        assert campaign.main(['--dry', '--cfg-options', f'{key}=5']) == 1
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err == (f'b2n_campaign.py: error: --cfg-options: {key} is set '
                       'by the campaign for each run (use --seeds, '
                       '--teacher)')

    def test_released_teachers(self, tmp_path):
        teachers = tmp_path / 'released'
        touch(teachers / 'dtd.pth')
        b, c = plan('--work-root', tmp_path, '--datasets', 'dtd', '--seeds',
                    1, '--stages', 'b', 'c', '--teacher', 'released',
                    '--released-teachers', teachers)
        assert options_of(b.command)['model.teacher.checkpoint'] == str(
            teachers / 'dtd.pth')
        assert options_of(c.command)['model.teacher.checkpoint'] == str(
            teachers / 'dtd.pth')
        assert (b.status, c.status) == ('todo', 'after')

    def test_released_teachers_do_not_follow_stage_a(self, capsys):
        assert campaign.main(['--dry', '--teacher', 'released']) == 1
        assert 'leave a out of --stages' in capsys.readouterr().err

    def test_unknown_dataset(self, capsys):
        assert campaign.main(['--dry', '--datasets', 'dtdd']) == 1
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("b2n_campaign.py: error: --datasets: no config "
                              "for 'dtdd' matches --teacher-configs")
        assert 'caltech101, dtd, eurosat' in err


class TestWhatIsFinished:
    """Statuses come from the files the runs write, nothing else."""

    def test_done_resume_and_todo(self, tmp_path):
        root = tmp_path
        # seed 1: every stage finished.
        touch(root / 'teachers/dtd/seed1/epoch_20.pth')
        touch(root / 'students/dtd/seed1/epoch_20.pth')
        touch(root / 'results/dtd/seed1/results.json',
              json.dumps({'b2n/base': 80.0, 'b2n/novel': 70.0}))
        # seed 2: the teacher was killed after epoch 7.
        touch(root / 'teachers/dtd/seed2/epoch_7.pth')
        touch(root / 'teachers/dtd/seed2/last_checkpoint',
              str(root / 'teachers/dtd/seed2/epoch_7.pth'))
        # seed 3: a killed run that saved nothing yet.
        touch(root / 'teachers/dtd/seed3/20260101_000000/x.log')
        steps = plan('--work-root', root, '--datasets', 'dtd')
        statuses = {(s.stage, s.seed): s.status for s in steps}
        assert statuses == {
            ('a', 1): 'done', ('a', 2): 'resume', ('a', 3): 'todo',
            ('b', 1): 'done', ('b', 2): 'after', ('b', 3): 'after',
            ('c', 1): 'done', ('c', 2): 'after', ('c', 3): 'after'
        }
        resumed = step(steps, 'a', 'dtd', 2)
        assert resumed.command[5] == '--resume'
        assert 'continues from' in resumed.note and 'epoch_7.pth' in \
            resumed.note
        assert '--resume' not in step(steps, 'a', 'dtd', 3).command
        assert '--resume' not in step(steps, 'a', 'dtd', 1).command

    def test_a_partial_student_resumes(self, tmp_path):
        touch(tmp_path / 'teachers/dtd/seed1/epoch_20.pth')
        touch(tmp_path / 'students/dtd/seed1/epoch_3.pth')
        a, b, c = plan('--work-root', tmp_path, '--datasets', 'dtd',
                       '--seeds', 1)
        assert (a.status, b.status, c.status) == ('done', 'resume', 'after')
        assert b.command[5] == '--resume'

    def test_a_stage_left_out_blocks_what_needs_it(self, tmp_path, capsys):
        argv = ['--work-root', str(tmp_path), '--datasets', 'dtd',
                '--seeds', '1', '--stages', 'b', 'c']
        b, c = plan(*argv)
        assert (b.status, c.status) == ('blocked', 'after')
        assert campaign.main(argv) == 1
        teacher = tmp_path / 'teachers/dtd/seed1/epoch_20.pth'
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f'b2n_campaign.py: error: stage b dtd seed1 needs {teacher}, '
            'which is missing and no stage asked for writes it; add the '
            'stage that writes it to --stages, or pass --teacher (--dry '
            'shows the plan)')
        assert not (tmp_path / 'students').exists()

    def test_unreadable_results_are_not_replaced(self, tmp_path, capsys):
        results = touch(tmp_path / 'results/dtd/seed1/results.json', '{"b2n')
        assert campaign.main(['--dry', '--work-root', str(tmp_path),
                              '--datasets', 'dtd', '--seeds', '1']) == 1
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f'b2n_campaign.py: error: {results} exists '
                              'but cannot be read as JSON')
        assert err.endswith('delete it to run that test again')

    def test_run_skips_what_is_done(self, tmp_path, monkeypatch, capsys):
        """The run loop, with a stand-in that writes what a run writes."""
        touch(tmp_path / 'teachers/dtd/seed1/epoch_20.pth')
        touch(tmp_path / 'teachers/dtd/seed2/epoch_4.pth')
        ran = []

        def fake_run(command, env):
            ran.append(command)
            if command[1] == 'tools/test.py':
                out = command[command.index('--out') + 1]
                touch(Path(out),
                      json.dumps({'b2n/base': 1.0, 'b2n/novel': 1.0}))
            else:
                work_dir = Path(command[command.index('--work-dir') + 1])
                touch(work_dir / 'epoch_20.pth')
            return 0

        monkeypatch.setattr(campaign, 'run_command', fake_run)
        argv = ['--work-root', str(tmp_path), '--datasets', 'dtd',
                '--seeds', '1', '2']
        assert campaign.main(argv) == 0
        out = capsys.readouterr().out
        assert '[1/6] stage a dtd seed1: done' in out
        assert '[2/6] stage a dtd seed2: resume' in out
        # Stage a of seed 1 was skipped; seed 2's teacher continued.
        assert [(c[1], c[c.index('--work-dir') + 1]) for c in ran] == [
            ('tools/train.py', str(tmp_path / f'{kind}/dtd/seed{k}'))
            for kind, k in (('teachers', 2), ('students', 1),
                            ('students', 2))
        ] + [('tools/test.py', str(tmp_path / f'results/dtd/seed{k}'))
             for k in (1, 2)]
        assert '--resume' in ran[0] and '--resume' not in ran[1]
        # A second run finds everything done and runs nothing.
        ran.clear()
        assert campaign.main(argv) == 0
        assert ran == []
        assert capsys.readouterr().out.count(': done (') == 6

    def test_a_failed_run_stops_the_campaign(self, tmp_path, monkeypatch,
                                             capsys):
        monkeypatch.setattr(campaign, 'run_command', lambda c, e: 3)
        assert campaign.main(['--work-root', str(tmp_path), '--datasets',
                              'dtd', '--seeds', '1']) == 3
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err == (
            'b2n_campaign.py: error: [1/3] stage a dtd seed1 failed with '
            f'exit status 3; logs in {tmp_path}/teachers/dtd/seed1. Run the '
            'same campaign command again to continue.')


class TestRunCommand:

    def test_exit_status(self):
        code = 'import sys; sys.exit(3)'
        assert campaign.run_command([sys.executable, '-c', code], {}) == 3

    def test_a_signal_to_the_campaign_ends_its_run(self, tmp_path):
        started = tmp_path / 'started'
        code = ('import os, sys, time; '
                f'open({str(started)!r}, "w").write(str(os.getpid())); '
                'time.sleep(60)')

        def signal_when_started():
            deadline = time.monotonic() + 30
            while not started.exists() or not started.read_text():
                if time.monotonic() > deadline:
                    return
                time.sleep(0.02)
            # The handler is installed before the run starts.
            os.kill(os.getpid(), signal.SIGTERM)

        before = signal.getsignal(signal.SIGTERM)
        thread = threading.Thread(target=signal_when_started)
        thread.start()
        try:
            with pytest.raises(SystemExit) as e:
                campaign.run_command([sys.executable, '-c', code],
                                     {'X': '1'})
        finally:
            thread.join()
        assert e.value.code == 128 + signal.SIGTERM
        # Passed on: the run ended (and was waited for) before the
        # campaign stopped.
        with pytest.raises(ProcessLookupError):
            os.kill(int(started.read_text()), 0)
        # The campaign's own handlers are back.
        assert signal.getsignal(signal.SIGTERM) == before


class TestDry:

    def test_dry_prints_the_plan(self, tmp_path, capsys):
        touch(tmp_path / 'teachers/dtd/seed1/epoch_20.pth')
        assert campaign.main(['--dry', '--work-root', str(tmp_path)]) == 0
        out = capsys.readouterr().out
        lines = out.splitlines()
        assert lines[0] == (
            'b2n campaign: 11 datasets x 3 seeds (1, 2, 3), stages a b c, '
            'launcher none, teacher: stage-a teachers of this campaign; '
            f'work root {tmp_path}')
        titles = [line for line in lines if line.startswith('== ')]
        assert titles == [
            '== stage a: teacher prompts on the base classes '
            '(tools/train.py), 33 runs: 1 done, 32 todo',
            '== stage b: distillation into the student (tools/train.py), 33 '
            'runs: 1 todo, 32 after',
            '== stage c: base / novel evaluation of the student '
            '(tools/test.py), 33 runs: 33 after'
        ]
        assert f'[done] dtd seed1 ({tmp_path}/teachers/dtd/seed1/' \
            'epoch_20.pth)' in lines
        # Every run: a status line, then its exact command.
        runs = [i for i, line in enumerate(lines) if line.startswith('[')]
        assert len(runs) == 99
        assert all(lines[i + 1].startswith('    ') for i in runs)
        assert lines[-1] == (
            'results: python tools/analysis/aggregate_results.py '
            f"'{tmp_path}/results/*/seed*/results.json'")
        # Nothing ran, nothing was written.
        assert sorted(p.name for p in tmp_path.iterdir()) == ['teachers']

    def test_dry_results_glob_is_what_aggregate_reads(self, tmp_path):
        steps = plan('--work-root', tmp_path, '--datasets', 'dtd', 'eurosat',
                     '--seeds', 1, 2)
        for s in steps:
            if s.stage == 'c':
                touch(Path(s.output),
                      json.dumps({'b2n/base': 80.0 + s.seed,
                                  'b2n/novel': 70.0}))
        pattern = str(tmp_path / 'results' / '*' / 'seed*' / 'results.json')
        groups = agg.group_results(agg.expand_paths([pattern]))
        assert {d: sorted(seeds) for d, seeds in groups.items()} == {
            'dtd': [1, 2], 'eurosat': [1, 2]
        }
        assert groups['dtd'][2]['base'] == 82.0


def _status_after_kill(work_dir: Path, final: str) -> str:
    """What the plan must say of a training run killed in ``work_dir``."""
    if (work_dir / final).is_file():
        return 'done'
    return 'resume' if list(work_dir.glob('*.pth')) else 'todo'


@pytest.mark.slow
def test_campaign_killed_and_continued(shapes_root, tmp_path, capsys):
    """Two seeds of the tiny synthetic-shapes pipeline, one epoch of
    distillation; the campaign is killed by its pid during stage a, and the
    same command continues it to results that aggregate_results.py reads.
    """
    root = tmp_path / 'campaign'
    data = [
        f'{split}_dataloader.dataset.data_root={shapes_root}'
        for split in ('train', 'val', 'test')
    ]
    # 12 labelled base images a seed (batch 4, 5 teacher epochs); the
    # student: one epoch over 24 unlabeled images.
    argv = [
        sys.executable, TOOLS / 'b2n_campaign.py', '--work-root', root,
        '--seeds', '1', '2', *TINY, '--cfg-options', *data,
        'train_dataloader.batch_size=4', '--student-cfg-options',
        'train_cfg.max_epochs=1'
    ]
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    # Its own process group: what the test started can be checked and, on
    # failure, ended.
    proc = subprocess.Popen([str(a) for a in argv[:4]] + ['--stages', 'a'] +
                            [str(a) for a in argv[4:]],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            start_new_session=True)
    teacher1 = root / 'teachers/synthetic-shapes/seed1'
    runs = []
    try:
        deadline = time.monotonic() + 240
        while not (teacher1 / 'epoch_1.pth').exists():
            assert proc.poll() is None, 'the campaign ended before a kill'
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) in (128 + signal.SIGTERM,
                                         -signal.SIGTERM)
        # The runs it started (each names its pid in its work directory)
        # ended with it: the signal was passed on.
        runs = [
            json.loads(holder.read_text())['pid']
            for holder in root.glob('teachers/*/seed*/.mmpromptkd-run.json')
        ]
        assert runs
        for pid in runs:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in runs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    expected = _status_after_kill(teacher1, 'epoch_5.pth')
    assert expected in ('resume', 'done')

    result = run_tool(argv, cwd=REPO)
    assert result.returncode == 0, result.stdout[-6000:]
    out = result.stdout
    assert f'stage a synthetic-shapes seed1: {expected} (' in out
    assert 'campaign finished (6 runs)' in out
    pattern = str(root / 'results' / '*' / 'seed*' / 'results.json')
    groups = agg.group_results(agg.expand_paths([pattern]))
    assert list(groups) == ['synthetic-shapes']
    assert sorted(groups['synthetic-shapes']) == [1, 2]
    assert agg.main([pattern]) == 0
    assert capsys.readouterr().out.splitlines()[2].split()[:2] == [
        'synthetic-shapes', '2'
    ]

    # Finished: the plan says so.
    assert campaign.main([str(a) for a in argv[2:]] + ['--dry']) == 0
    assert capsys.readouterr().out.count('\n[done] ') == 6
