"""Run the paper's base-to-novel campaign (datasets x seeds x stages a, b,
c), resumable; ``--dry`` prints the plan. See docs/campaign.md.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

# This checkout, even where another copy is installed.
_REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if sys.path[0] != _REPO_ROOT:
    sys.path.insert(0, _REPO_ROOT)

# mmengine only: the campaign reads configs and starts the tools; it never
# imports the package (seconds of start-up, and --dry stays quick).
from mmengine.config import Config, DictAction  # noqa: E402

TOOLS = osp.join(_REPO_ROOT, 'tools')
STAGES = ('a', 'b', 'c')
STAGE_TITLES = {
    'a': 'teacher prompts on the base classes (tools/train.py)',
    'b': 'distillation into the student (tools/train.py)',
    'c': 'base / novel evaluation of the student (tools/test.py)',
}
DEFAULT_TEACHER_CONFIGS = osp.join(
    _REPO_ROOT, 'configs', 'promptsrc',
    'promptsrc_vit-l14_*_b2n-{dataset}.py')
DEFAULT_STUDENT_CONFIGS = osp.join(
    _REPO_ROOT, 'configs', 'promptkd',
    'promptkd_vit-b16_vit-l14-promptsrc_*_b2n-{dataset}.py')
DEFAULT_RELEASED_TEACHERS = osp.join('checkpoints', 'promptkd_teachers')
DEFAULT_WORK_ROOT = osp.join('work_dirs', 'b2n_campaign')
#: A dataset name in a config file name (an underscore starts a variant).
DATASET_NAME = r'[a-z0-9]+(?:-[a-z0-9]+)*'
RESULTS_FILE = 'results.json'
LAUNCHERS = ('none', 'pytorch', 'slurm')
#: Options the campaign sets per run (its seeds and teachers).
RESERVED_KEYS = ('randomness.seed', 'model.teacher.checkpoint')


@dataclass
class Step:
    """One run of ``command`` (with ``env``), done once ``output`` exists.

    ``status`` is done, resume, todo, after (waits for ``needs``, which an
    earlier stage writes) or blocked; ``note`` says why.
    """
    stage: str
    dataset: str
    seed: int
    config: str
    work_dir: str
    output: str
    command: List[str]
    env: Dict[str, str] = field(default_factory=dict)
    status: str = 'todo'
    needs: Optional[str] = None
    note: str = ''

    def shell(self) -> str:
        env = [f'{k}={shlex.quote(v)}' for k, v in self.env.items()]
        return ' '.join(env + [shlex.join(self.command)])


def show_path(path: str) -> str:
    """``path`` relative to the current directory inside it, else absolute.
    """
    absolute = osp.abspath(path)
    cwd = os.getcwd()
    if absolute == cwd or absolute.startswith(cwd.rstrip(os.sep) + os.sep):
        return osp.relpath(absolute)
    return absolute


def python_command() -> str:
    on_path = shutil.which('python')
    if on_path and osp.realpath(on_path) == osp.realpath(sys.executable):
        return 'python'
    return sys.executable


def find_configs(pattern: str) -> Dict[str, str]:
    """``{dataset: config}`` of a glob with ``{dataset}``, sorted."""
    if pattern.count('{dataset}') != 1:
        raise ValueError(f'config pattern {pattern!r} must contain '
                         '"{dataset}" exactly once')
    head, tail = pattern.split('{dataset}')

    def glob_regex(part: str) -> str:
        return ''.join('[^/]*' if p == '*' else re.escape(p)
                       for p in re.split(r'(\*)', part.replace(os.sep, '/')))

    regex = re.compile(glob_regex(head) + f'(?P<dataset>{DATASET_NAME})' +
                       glob_regex(tail) + '$')
    found: Dict[str, str] = {}
    for path in sorted(glob.glob(head + '*' + tail)):
        match = regex.match(path.replace(os.sep, '/'))
        if match is None:
            continue
        dataset = match.group('dataset')
        if dataset in found:
            raise ValueError(
                f'two configs match {pattern!r} for dataset {dataset!r}: '
                f'{found[dataset]} and {path}; make the pattern narrower')
        found[dataset] = path
    return dict(sorted(found.items()))


def final_checkpoint(cfg: Config, work_dir: str) -> str:
    """The last checkpoint a finished run of ``cfg`` leaves in ``work_dir``.
    """
    train_cfg = cfg.get('train_cfg') or {}
    for key, prefix in (('max_epochs', 'epoch'), ('max_iters', 'iter')):
        if train_cfg.get(key) is not None:
            return osp.join(work_dir, f'{prefix}_{train_cfg[key]}.pth')
    raise ValueError(f'{cfg.filename}: train_cfg has neither max_epochs '
                     'nor max_iters; the final checkpoint is unknown')


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The ``last_checkpoint`` marker's checkpoint, else the newest, or None.
    """
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        with open(marker, encoding='utf-8') as f:
            named = f.read().strip()
        if named:
            return named
    found = glob.glob(osp.join(glob.escape(work_dir), '*.pth'))
    return max(found, key=osp.getmtime) if found else None


def option_items(options: Dict[str, str]) -> List[str]:
    return [f'{k}={v}' for k, v in options.items()]


def load_run_config(config: str, options: Dict[str, str]) -> Config:
    """The config as a run with ``--cfg-options options`` sees it."""
    cfg = Config.fromfile(config)
    if options:
        # As tools/train.py, except for spaces inside values (which do not
        # matter here); the runs get the options as given.
        parser = argparse.ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        cfg.merge_from_dict(
            parser.parse_args(['--cfg-options',
                               *option_items(options)]).cfg_options)
    return cfg


class Campaign:
    """The plan of a campaign (of the parsed command line) and its run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stages = [s for s in STAGES if s in args.stages]
        self.common = self._options(args.cfg_options, '--cfg-options')
        self.teacher_options = self._options(args.teacher_cfg_options,
                                             '--teacher-cfg-options')
        self.student_options = self._options(args.student_cfg_options,
                                             '--student-cfg-options')
        if args.launcher == 'slurm' and not args.partition:
            raise ValueError('--launcher slurm needs --partition')
        if args.teacher == 'released' and 'a' in self.stages:
            raise ValueError(
                '--teacher released: stage b would not use the teachers of '
                'stage a; leave a out of --stages')
        self.teacher_configs = find_configs(args.teacher_configs)
        self.student_configs = find_configs(args.student_configs)
        self.datasets = self._datasets()
        self.seeds = list(dict.fromkeys(args.seeds))
        if any(seed < 0 for seed in self.seeds):
            raise ValueError(f'--seeds must be non-negative, got '
                             f'{args.seeds}')
        self._configs: Dict[Tuple[str, str], Config] = {}

    @staticmethod
    def _options(items: Optional[Sequence[str]],
                 name: str) -> Dict[str, str]:
        """Raw ``KEY=VALUE`` options, checked for reserved keys."""
        options: Dict[str, str] = {}
        for item in items or ():
            if '=' not in item:
                raise ValueError(f'{name}: {item!r} is not KEY=VALUE')
            key, value = item.split('=', maxsplit=1)
            if key in RESERVED_KEYS or re.fullmatch(
                    r'(train|val|test)_dataloader\.dataset\.seed', key):
                raise ValueError(
                    f'{name}: {key} is set by the campaign for each run '
                    '(use --seeds, --teacher)')
            options[key] = value
        return options

    def _datasets(self) -> List[str]:
        """The datasets to run, checked against the configs found."""
        teacher = (self.teacher_configs, '--teacher-configs',
                   self.args.teacher_configs)
        sources = [(self.student_configs, '--student-configs',
                    self.args.student_configs)
                   ] if {'b', 'c'} & set(self.stages) else []
        if 'a' in self.stages:
            sources.insert(0, teacher)
        elif self.args.teacher == 'campaign':
            # Stages b and c name the final checkpoint of stage a's config.
            sources.append(teacher)
        available = sorted(set.intersection(
            *[set(found) for found, _, _ in sources]))
        if not self.args.datasets:
            if not available:
                raise ValueError(
                    'no dataset has configs for every stage asked for: ' +
                    '; '.join(f'{name} {pattern!r} matches '
                              f'{sorted(found) or "nothing"}'
                              for found, name, pattern in sources))
            return available
        for dataset in self.args.datasets:
            for found, name, pattern in sources:
                if dataset not in found:
                    raise ValueError(
                        f'--datasets: no config for {dataset!r} matches '
                        f'{name} {pattern!r}; datasets found: '
                        f'{", ".join(sorted(found)) or "none"}')
        return list(dict.fromkeys(self.args.datasets))

    def _config(self, config: str, options: Dict[str, str]) -> Config:
        """The merged config of a run, loaded once."""
        key = (config, json.dumps(options, sort_keys=True))
        if key not in self._configs:
            self._configs[key] = load_run_config(config, options)
        return self._configs[key]

    def run_dir(self, kind: str, dataset: str, seed: int) -> str:
        return osp.join(self.args.work_root, kind, dataset, f'seed{seed}')

    def _launch(self, kind: str, stage: str, dataset: str, seed: int,
                config: str, work_dir: str, checkpoint: Optional[str],
                tail: List[str]) -> Tuple[List[str], Dict[str, str]]:
        args = self.args
        config = show_path(config)
        work_dir = show_path(work_dir)
        if args.launcher != 'slurm':
            local = args.launcher == 'none'
            script = f'{kind}.py' if local else f'dist_{kind}.sh'
            head = [python_command() if local else 'bash',
                    show_path(osp.join(TOOLS, script)), config]
            head += [checkpoint] if checkpoint else []
            head += [] if local else [str(args.gpus)]
            return head + ['--work-dir', work_dir] + tail, {}
        script = show_path(osp.join(TOOLS, f'slurm_{kind}.sh'))
        job = f'{args.job_name}-{stage}-{dataset}-seed{seed}'
        env = {
            'GPUS': str(args.gpus),
            'GPUS_PER_NODE': str(min(args.gpus, args.gpus_per_node)),
        }
        if kind == 'train':
            # slurm_train.sh passes the work directory itself.
            return ['bash', script, args.partition, job, config, work_dir
                    ] + tail, env
        return ['bash', script, args.partition, job, config, checkpoint,
                '--work-dir', work_dir] + tail, env

    def _train_step(self, stage: str, dataset: str, seed: int,
                    needs: Optional[str]) -> Step:
        """A stage-a or stage-b run; ``needs`` is stage b's teacher."""
        kind = 'teacher' if stage == 'a' else 'student'
        config = getattr(self, f'{kind}_configs')[dataset]
        base = {**self.common, **getattr(self, f'{kind}_options')}
        work_dir = self.run_dir(f'{kind}s', dataset, seed)
        cfg = self._config(config, base)
        # The run's seed, and that of every few-shot dataset that has one.
        options = {'randomness.seed': str(seed)}
        for split in ('train', 'val', 'test'):
            loader = cfg.get(f'{split}_dataloader') or {}
            if 'seed' in (loader.get('dataset') or {}):
                options[f'{split}_dataloader.dataset.seed'] = str(seed)
        options.update(base)
        if needs is not None:
            options['model.teacher.checkpoint'] = show_path(needs)
        output = final_checkpoint(cfg, work_dir)
        latest = latest_checkpoint(work_dir)
        if osp.isfile(output):
            status, note = 'done', show_path(output)
        elif latest is not None:
            status = 'resume'
            note = (f'interrupted: continues from {show_path(latest)}, '
                    f'ends with {osp.basename(output)}')
        else:
            status, note = 'todo', f'ends with {show_path(output)}'
        tail = ['--resume'] if status == 'resume' else []
        tail += ['--cfg-options'] + option_items(options)
        command, env = self._launch('train', stage, dataset, seed, config,
                                    work_dir, None, tail)
        return Step(stage, dataset, seed, config, work_dir, output, command,
                    env, status, needs, note)

    def _test_step(self, dataset: str, seed: int,
                   student: Step) -> Step:
        """The stage-c test of the final checkpoint of ``student``."""
        config = self.student_configs[dataset]
        work_dir = self.run_dir('results', dataset, seed)
        output = osp.join(work_dir, RESULTS_FILE)
        options = {**self.common, **self.student_options}
        # The test builds the teacher too: the stored text features are
        # checked against the teacher they were made with.
        options['model.teacher.checkpoint'] = show_path(student.needs)
        tail = ['--out', show_path(output), '--cfg-options'
                ] + option_items(options)
        command, env = self._launch('test', 'c', dataset, seed, config,
                                    work_dir, show_path(student.output),
                                    tail)
        status, note = 'todo', f'writes {show_path(output)}'
        if osp.isfile(output):
            try:
                with open(output, encoding='utf-8') as f:
                    data = json.load(f)
            except (OSError, json.JSONDecodeError) as e:
                raise ValueError(
                    f'{output} exists but cannot be read as JSON ({e}); '
                    'delete it to run that test again') from e
            if not isinstance(data, dict) or \
                    not {'b2n/base', 'b2n/novel'} <= set(data):
                raise ValueError(f'{output} exists but holds no b2n/base and '
                                 'b2n/novel accuracies; delete it to run '
                                 'that test again')
            status, note = 'done', show_path(output)
        return Step('c', dataset, seed, config, work_dir, output, command,
                    env, status, student.output, note)

    def plan(self) -> List[Step]:
        """Every run, stage by stage, with its status read from disk."""
        steps: Dict[str, List[Step]] = {s: [] for s in STAGES}
        for dataset in self.datasets:
            for seed in self.seeds:
                if self.args.teacher == 'campaign':
                    teacher = self._train_step('a', dataset, seed, None)
                    steps['a'].append(teacher)
                if not {'b', 'c'} & set(self.stages):
                    continue
                if self.args.teacher == 'campaign':
                    needs = teacher.output
                else:
                    needs = osp.join(self.args.released_teachers,
                                     f'{dataset}.pth')
                student = self._train_step('b', dataset, seed, needs)
                steps['b'].append(student)
                steps['c'].append(self._test_step(dataset, seed, student))
        # Stages left out of --stages were planned only for their files.
        producers = {s.output: s for stage in self.stages
                     for s in steps[stage]}
        planned = []
        for stage in self.stages:
            for step in steps[stage]:
                if step.status != 'done' and step.needs and not osp.isfile(
                        step.needs):
                    producer = producers.get(step.needs)
                    if producer is not None:
                        step.status = 'after'
                        step.note = (f'after stage {producer.stage} writes '
                                     f'{show_path(step.needs)}')
                    else:
                        step.status = 'blocked'
                        step.note = (f'needs {show_path(step.needs)}, which '
                                     'is missing and no stage asked for '
                                     'writes it')
                planned.append(step)
        return planned

    def header(self) -> str:
        args = self.args
        launcher = args.launcher
        if launcher != 'none':
            launcher += f', {args.gpus} GPUs'
        if launcher.startswith('slurm'):
            launcher += f', partition {args.partition}'
        teacher = ('stage-a teachers of this campaign'
                   if args.teacher == 'campaign' else
                   f'released teachers from '
                   f'{show_path(args.released_teachers)}')
        return (f'b2n campaign: {len(self.datasets)} datasets x '
                f'{len(self.seeds)} seeds ({", ".join(map(str, self.seeds))})'
                f', stages {" ".join(self.stages)}, launcher {launcher}, '
                f'teacher: {teacher}; work root '
                f'{show_path(args.work_root)}')

    def results_command(self) -> str:
        return 'python ' + shlex.join([
            show_path(osp.join(TOOLS, 'analysis', 'aggregate_results.py')),
            osp.join(show_path(self.args.work_root), 'results', '*', 'seed*',
                     RESULTS_FILE)
        ])

    def format_plan(self, steps: Sequence[Step]) -> str:
        """The plan as ``--dry`` prints it."""
        lines = [self.header()]
        for stage in self.stages:
            runs = [s for s in steps if s.stage == stage]
            counts = {k: sum(s.status == k for s in runs)
                      for k in ('done', 'resume', 'todo', 'after',
                                'blocked')}
            shown = ', '.join(f'{n} {k}' for k, n in counts.items() if n)
            lines.append('')
            lines.append(f'== stage {stage}: {STAGE_TITLES[stage]}, '
                         f'{len(runs)} runs: {shown}')
            for step in runs:
                lines.append(f'[{step.status}] {step.dataset} seed'
                             f'{step.seed} ({step.note})')
                lines.append(f'    {step.shell()}')
        lines.append('')
        lines.append('results: ' + self.results_command())
        return '\n'.join(lines)

    def run(self) -> int:
        """Run what is not finished; the exit status of a failed run."""
        steps = self.plan()
        blocked = [s for s in steps if s.status == 'blocked']
        if blocked:
            step = blocked[0]
            raise ValueError(
                f'stage {step.stage} {step.dataset} seed{step.seed} '
                f'{step.note}; add the stage that writes it to --stages, or '
                f'pass --teacher (--dry shows the plan)')
        print(self.header(), flush=True)
        total = len(steps)
        for index, planned in enumerate(steps, 1):
            # Re-read from disk: earlier steps have written their files.
            step = next(s for s in self.plan()
                        if (s.stage, s.dataset, s.seed) ==
                        (planned.stage, planned.dataset, planned.seed))
            title = (f'[{index}/{total}] stage {step.stage} {step.dataset} '
                     f'seed{step.seed}')
            if step.status == 'done':
                print(f'{title}: done ({step.note})', flush=True)
                continue
            if step.needs and not osp.isfile(step.needs):
                raise FileNotFoundError(
                    f'{title} needs {show_path(step.needs)}, which its '
                    'stage did not write')
            print(f'{title}: {step.status} ({step.note})\n    '
                  f'{step.shell()}', flush=True)
            code = run_command(step.command, step.env)
            if code != 0:
                print(f'b2n_campaign.py: error: {title} failed with exit '
                      f'status {code}; logs in {show_path(step.work_dir)}. '
                      'Run the same campaign command again to continue.',
                      file=sys.stderr)
                return code
            if not osp.isfile(step.output):
                raise FileNotFoundError(
                    f'{title} ended without writing {show_path(step.output)}'
                    '; check its logs in ' + show_path(step.work_dir))
        print(f'campaign finished ({total} runs); results: '
              f'{self.results_command()}', flush=True)
        return 0


def run_command(command: List[str], env: Dict[str, str]) -> int:
    """Run a command, passing SIGTERM and SIGINT on (then exiting with 128 +
    signal); its exit status, as a shell reports it."""
    # Its own process group: a Ctrl-C reaches the run once, not twice.
    received: List[int] = []
    proc: Optional[subprocess.Popen] = None

    def forward(signum, frame):
        received.append(signum)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signum)

    # Installed before the run starts: a signal in between is not lost.
    previous = {
        sig: signal.signal(sig, forward)
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        proc = subprocess.Popen(
            command, env={**os.environ, **env}, preexec_fn=os.setpgrp)
        if received:
            proc.send_signal(received[0])
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        # The campaign stops with its run, as the signal asked.
        raise SystemExit(128 + received[0])
    return code if code >= 0 else 128 - code


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Run the base-to-novel campaign (datasets x seeds, '
        'stages a: teacher, b: distillation, c: test), resumable; --dry '
        'prints the plan')
    add = parser.add_argument
    add('--datasets', nargs='+',
        help='dataset names as in the config names (default: every dataset '
        'with configs for the stages asked for)')
    add('--seeds', nargs='+', type=int, default=[1, 2, 3],
        help='seeds (default: 1 2 3)')
    add('--stages', nargs='+', choices=STAGES, default=list(STAGES),
        help='stages to run, always in the order a, b, c (default: a b c)')
    add('--work-root', default=DEFAULT_WORK_ROOT,
        help='root of the work directories: teachers/, students/ and '
        f'results/<dataset>/seed<k>/ (default: {DEFAULT_WORK_ROOT})')
    add('--teacher', choices=('campaign', 'released'), default='campaign',
        help='teacher of stage b: the stage-a run of the same dataset and '
        'seed (campaign, default), or <released-teachers>/<dataset>.pth '
        '(released)')
    add('--released-teachers', default=DEFAULT_RELEASED_TEACHERS,
        help='folder of the converted released teachers, <dataset>.pth '
        f'(default: {DEFAULT_RELEASED_TEACHERS})')
    add('--teacher-configs', default=DEFAULT_TEACHER_CONFIGS,
        help='glob of the stage-a configs with {dataset} for the dataset '
        'name (default: configs/promptsrc/promptsrc_vit-l14_*_b2n-'
        '{dataset}.py)')
    add('--student-configs', default=DEFAULT_STUDENT_CONFIGS,
        help='glob of the stage-b/c configs with {dataset} (default: '
        'configs/promptkd/promptkd_vit-b16_vit-l14-promptsrc_*_b2n-'
        '{dataset}.py)')
    add('--cfg-options', nargs='+', metavar='KEY=VALUE',
        help='passed to every run of every stage (tools/train.py and '
        'tools/test.py --cfg-options)')
    add('--teacher-cfg-options', nargs='+', metavar='KEY=VALUE',
        help='passed to the stage-a runs only')
    add('--student-cfg-options', nargs='+', metavar='KEY=VALUE',
        help='passed to the stage-b and stage-c runs only')
    add('--launcher', choices=LAUNCHERS, default='none',
        help='none: python tools/train.py / test.py; pytorch: '
        'tools/dist_*.sh (torchrun, one node); slurm: tools/slurm_*.sh '
        '(srun)')
    add('--gpus', type=int, default=1,
        help='processes (GPUs) per run for --launcher pytorch / slurm '
        '(default: 1)')
    add('--gpus-per-node', type=int, default=8,
        help='slurm: tasks per node, at most --gpus (default: 8)')
    add('--partition', help='slurm partition')
    add('--job-name', default='promptkd',
        help='slurm job name prefix; each run adds -<stage>-<dataset>-'
        'seed<k> (default: promptkd)')
    add('--dry', action='store_true',
        help='print the plan (every run, its status and exact command) and '
        'run nothing')
    args = parser.parse_args(argv)
    if args.gpus < 1 or args.gpus_per_node < 1:
        parser.error('--gpus and --gpus-per-node must be at least 1')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        campaign = Campaign(args)
        if args.dry:
            print(campaign.format_plan(campaign.plan()))
            return 0
        return campaign.run()
    except (FileNotFoundError, ValueError) as e:
        print(f'b2n_campaign.py: error: {e}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
