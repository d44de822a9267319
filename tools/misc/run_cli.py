"""What the command-line tools share: config options and run set-up (the
tools put ``tools/misc`` on ``sys.path``; the package never imports it)."""
import argparse
import contextlib
import difflib
import glob
import inspect
import itertools
import json
import os
import os.path as osp
import socket
import sys
import time
import traceback
from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict
from mmengine.device import get_device
from mmengine.runner import Runner

from mmpromptkd.engine.hooks.safe_checkpoint_hook import checkpoint_folder
from mmpromptkd.fileio import atomic_write
from mmpromptkd.registry import RUNNERS
from mmpromptkd.utils.state_dict_check import CheckpointMismatchError

_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: What Ctrl-C says when the work directory holds a checkpoint.
CONTINUE_HINT = 'continue from the last checkpoint with --resume'


class CfgOptionsAction(argparse.Action):
    """mmengine's ``DictAction``, except that values keep their spaces."""

    def __call__(self, parser, namespace, values, option_string=None):
        options = dict(getattr(namespace, self.dest, None) or {})
        for item in values or ():
            key, value = item.split('=', maxsplit=1)
            options[key] = parse_option_value(value)
        setattr(namespace, self.dest, options)


def parse_option_value(val: str) -> Any:
    """The value of one ``KEY=VALUE`` option."""
    val = val.strip()
    if len(val) >= 2 and val[0] == val[-1] and val[0] in '\'"':
        return val[1:-1]
    bracketed = len(val) >= 2 and (val[0], val[-1]) in (('(', ')'),
                                                        ('[', ']'))
    if not bracketed and ',' not in val:
        # An int, float, bool or None where it reads as one.
        for kind in (int, float):
            try:
                return kind(val)
            except ValueError:
                pass
        if val.lower() in ('true', 'false'):
            return val.lower() == 'true'
        return None if val == 'None' else val
    body = val[1:-1] if bracketed else val
    items = [parse_option_value(item) for item in _split_top_level(body)]
    return tuple(items) if bracketed and val[0] == '(' else items


def _split_top_level(text: str) -> List[str]:
    """Split at the commas outside brackets; an empty text gives []."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in '([':
            depth += 1
        elif char in ')]':
            depth -= 1
            if depth < 0:
                raise ValueError(f'unbalanced brackets in {text!r}')
        elif char == ',' and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise ValueError(f'unbalanced brackets in {text!r}')
    if text[start:].strip() or items:
        items.append(text[start:])
    return items


def _closest(name: str, choices) -> str:
    match = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f' Did you mean {match[0]!r}?' if match else ''


def _component(type_name: Any) -> Optional[type]:
    """The class a ``type`` names, from this package's registries."""
    if not isinstance(type_name, str):
        return type_name if isinstance(type_name, type) else None
    from mmpromptkd import registry
    for name in registry.__all__:
        reg = getattr(registry, name)
        while reg is not None:
            if type_name in reg.module_dict:
                return reg.module_dict[type_name]
            reg = reg.parent
    return None


def _accepted(cls: type) -> Optional[set]:
    """Keyword arguments ``cls`` takes; None if it takes any."""
    from mmengine.hooks import CheckpointHook
    names, open_ended = set(), True
    # A subclass that passes **kwargs on takes its parents' arguments too.
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if not open_ended or klass is object:
            break
        if init is None:
            continue
        open_ended = False
        for param in inspect.signature(init).parameters.values():
            if param.kind == param.VAR_KEYWORD:
                open_ended = True
            elif param.name != 'self':
                names.add(param.name)
    if open_ended and issubclass(cls, CheckpointHook):
        # Its other keyword arguments go to Runner.save_checkpoint.
        names |= set(inspect.signature(Runner.save_checkpoint).parameters)
        open_ended = False
    return None if open_ended else names | {'type', '_scope_'}


def check_cfg_options(cfg: Config,
                      options: Dict[str, Any],
                      allow_new_keys: bool = False) -> None:
    """Refuse (ValueError) ``--cfg-options`` keys the run would never read.
    """
    if allow_new_keys:
        return
    for key in options:
        parts = key.split('.')
        if parts[0] not in cfg:
            raise ValueError(
                f'--cfg-options {key}: the config has no field '
                f'{parts[0]!r}, so the option would be ignored.'
                f'{_closest(parts[0], cfg.keys())} (Pass '
                '--cfg-options-new-keys to add new fields.)')
        node = cfg[parts[0]]
        for depth, part in enumerate(parts[1:], start=1):
            if not isinstance(node, dict):
                break
            if part in node:
                node = node[part]
                continue
            cls = _component(node.get('type'))
            accepted = _accepted(cls) if cls is not None else None
            if accepted is not None and part not in accepted:
                where = '.'.join(parts[:depth])
                raise ValueError(
                    f'--cfg-options {key}: {cls.__name__} ({where}) takes '
                    f'no argument {part!r}.{_closest(part, accepted)}')
            break


def merge_cfg_options(cfg: Config,
                      options: Optional[Dict[str, Any]],
                      allow_new_keys: bool = False) -> None:
    """Check ``--cfg-options`` (:func:`check_cfg_options`) and merge them
    into ``cfg``."""
    if options:
        check_cfg_options(cfg, options, allow_new_keys)
        cfg.merge_from_dict(options)


def parse_run_args(parser: argparse.ArgumentParser,
                   argv: Optional[Sequence[str]],
                   example: str) -> argparse.Namespace:
    """Parse ``argv`` with the options train.py and test.py share added.
    """
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override settings of the config, as key=value pairs merged '
        f'into it, e.g. {example} or key="[a,b]" for lists (quotes '
        'needed); a key the config does not have is an error')
    parser.add_argument(
        '--cfg-options-new-keys', action='store_true',
        help='let --cfg-options add fields the config does not have')
    parser.add_argument('--launcher', default='none', help='job launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or
    # --local_rank (older); torchrun sets LOCAL_RANK instead.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def resolve_work_dir(cfg: Config, work_dir: Optional[str],
                     config_path: str) -> str:
    """Set and return ``cfg.work_dir``: command line, config, config name.
    """
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        name = osp.splitext(osp.basename(config_path))[0]
        cfg.work_dir = osp.join('./work_dirs', name)
    # mmengine dumps the merged config as <work_dir>/<config name>.
    dumped = osp.join(cfg.work_dir, osp.basename(config_path))
    if osp.exists(config_path) and osp.exists(dumped) and \
            osp.samefile(dumped, config_path):
        raise ValueError(
            f'work directory {cfg.work_dir} holds the config {config_path}: '
            'the run would replace it with the merged config (with the '
            '--cfg-options baked in). Choose another --work-dir.')
    return cfg.work_dir


def set_dataloader_defaults(cfg: Config,
                            fields: Sequence = ('train_dataloader',
                                                'val_dataloader',
                                                'test_dataloader'),
                            pin_memory: bool = True,
                            persistent_workers: bool = True) -> None:
    """Give the dataloaders mmpretrain's defaults; the config's own win,
    except that ``False`` here disables an option everywhere."""
    for field in fields:
        loader = cfg.get(field, None)
        if loader is None:
            continue
        merged = ConfigDict(
            pin_memory=pin_memory and torch.cuda.is_available(),
            collate_fn=dict(type='default_collate'))
        merged.update(loader)
        if not pin_memory:
            merged.pin_memory = False
        if persistent_workers and merged.get('num_workers', 0) > 0:
            merged.setdefault('persistent_workers', True)
        else:
            merged.persistent_workers = False
        cfg[field] = merged


def enable_amp(cfg: Config) -> None:
    """Switch ``cfg.optim_wrapper`` to automatic mixed precision."""
    optim_wrapper = cfg.optim_wrapper
    known = ('OptimWrapper', 'AmpOptimWrapper', 'AutocastOptimWrapper')
    if optim_wrapper.get('type', 'OptimWrapper') not in known:
        raise ValueError(
            f'--amp replaces the optimizer wrapper, but the config uses '
            f'{optim_wrapper.type}; set mixed precision in the config '
            'instead.')
    # The devices that mmengine's AmpOptimWrapper accepts.
    if get_device() in ('cuda', 'npu', 'mlu', 'musa'):
        optim_wrapper.type = 'AmpOptimWrapper'
        optim_wrapper.setdefault('loss_scale', 'dynamic')
        optim_wrapper.setdefault('dtype', 'float16')
    else:
        optim_wrapper.type = 'AutocastOptimWrapper'
        optim_wrapper.setdefault('dtype', 'bfloat16')


def init_cpu_distributed(launcher: str, timeout_s: int = 1800) -> bool:
    """Start a gloo process group when a distributed run has no GPU; True
    if it did."""
    if launcher == 'none' or torch.cuda.is_available() or \
            dist.is_initialized():
        return False
    sources = dict(
        slurm=('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID'),
        mpi=('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE',
             'OMPI_COMM_WORLD_LOCAL_RANK')).get(launcher, ())
    for key, source in zip(('RANK', 'WORLD_SIZE', 'LOCAL_RANK'), sources):
        os.environ.setdefault(key, os.environ[source])
    if launcher == 'slurm':
        os.environ.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in os.environ:
            import subprocess
            nodes = os.environ['SLURM_NODELIST']
            os.environ['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {nodes} | head -n1')
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise RuntimeError(f'launcher "{launcher}": environment variables '
                           f'{missing} are not set; start the job with '
                           'torchrun (tools/dist_train.sh) or srun')
    os.environ.setdefault('LOCAL_RANK', os.environ['RANK'])
    from datetime import timedelta
    dist.init_process_group(
        backend='gloo', timeout=timedelta(seconds=timeout_s))
    return True


def setup_cpu_distributed(cfg: Config, launcher: str) -> bool:
    """Prepare a distributed run without a GPU; True if a CPU group started.

    mmengine's launchers call ``torch.cuda.set_device``, so the gloo group
    starts first; DDP refuses ``device_ids`` for CPU modules.
    """
    dist_cfg = (cfg.get('env_cfg', None) or {}).get('dist_cfg', None) or {}
    if not init_cpu_distributed(
            launcher, timeout_s=dist_cfg.get('timeout', 1800)):
        return False
    wrapper = ConfigDict(cfg.get('model_wrapper_cfg', None) or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    # The Runner only reads the top-level flag without a wrapper config.
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.device_ids = None
    cfg.model_wrapper_cfg = wrapper
    env_cfg = cfg.get('env_cfg', None) or ConfigDict()
    env_cfg.setdefault('dist_cfg', ConfigDict())
    env_cfg.dist_cfg.backend = 'gloo'
    cfg.env_cfg = env_cfg
    return True


def find_existing_checkpoints(cfg: Config) -> List[str]:
    """Sorted checkpoints and ``last_checkpoint`` markers a run could
    overwrite."""
    hook = (cfg.get('default_hooks', None) or {}).get('checkpoint', None)
    out_dir = hook.get('out_dir', None) if hook else None
    found: List[str] = []
    for directory in {cfg.work_dir, checkpoint_folder(cfg.work_dir, out_dir)}:
        found += glob.glob(osp.join(glob.escape(directory), '*.pth'))
        marker = osp.join(directory, 'last_checkpoint')
        if osp.isfile(marker):
            found.append(marker)
    return sorted(set(found))


def check_work_dir_is_free(cfg: Config) -> None:
    """Refuse (FileExistsError) a fresh run over earlier checkpoints."""
    existing = [] if cfg.get('resume', False) else \
        find_existing_checkpoints(cfg)
    if not existing:
        return
    shown = ', '.join(existing[:5]) + (
        f' and {len(existing) - 5} more' if len(existing) > 5 else '')
    raise FileExistsError(
        f'work_dir {cfg.work_dir} already holds checkpoints ({shown}); a new '
        'run would overwrite them. Continue that run with --resume (or '
        '--resume CHECKPOINT), or choose another --work-dir.')


def lock_work_dir(cfg: Config):
    """Lock ``cfg.work_dir`` (an OS file lock: a killed run never blocks the
    next); the lock to keep for the run, None on ranks other than 0."""
    from filelock import FileLock, Timeout
    rank = os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0'))
    if rank != '0':
        return None
    work_dir = cfg.work_dir
    if osp.islink(work_dir) and not osp.exists(work_dir):
        raise FileNotFoundError(
            f'work_dir {work_dir} is a symbolic link to '
            f'{os.readlink(work_dir)}, which does not exist; create its '
            'target or choose another --work-dir')
    os.makedirs(work_dir, exist_ok=True)
    lock = FileLock(osp.join(work_dir, '.mmpromptkd-run.lock'), timeout=0)
    holder_file = osp.join(work_dir, '.mmpromptkd-run.json')
    try:
        lock.acquire()
    except Timeout:
        try:
            with open(holder_file) as f:
                holder = json.load(f)
            who = (f'process {holder["pid"]} on {holder["host"]}, started '
                   f'{holder["started"]}: {holder["command"]}')
        except (OSError, ValueError, KeyError):
            who = 'another process'
        raise RuntimeError(
            f'work_dir {work_dir} is in use by another run ({who}); wait '
            'for it to end or choose another --work-dir') from None
    atomic_write(
        json.dumps(
            dict(pid=os.getpid(), host=socket.gethostname(),
                 started=time.strftime('%Y-%m-%d %H:%M:%S'),
                 command=' '.join(sys.argv))).encode(), holder_file)
    return lock


_RUN_NUMBERS = itertools.count()


def build_runner(cfg: Config) -> Runner:
    """``Runner.from_cfg(cfg)``, or the config's ``runner_type``."""
    named = not cfg.get('experiment_name')
    if named:
        # mmengine names a run's logger and scope '<config>_<second>': a
        # second run in that second would log into the first's closed file.
        stem = osp.splitext(osp.basename(cfg.filename or 'run'))[0]
        cfg.experiment_name = \
            f'{stem}_{time.strftime("%Y%m%d_%H%M%S")}_{next(_RUN_NUMBERS)}'
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else \
        RUNNERS.build(cfg)
    if named:  # not written into the work dir's config
        runner.cfg.pop('experiment_name')
    return runner


def close_distributed() -> None:
    """Leave the process group, if any, once every rank is done."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def naming_the_checkpoint(cfg: Config) -> Iterator[None]:
    """Name the checkpoint file in weight-mismatch errors of a run."""
    try:
        yield
    except CheckpointMismatchError as e:
        if e.source is not None:
            raise
        from mmengine.runner.checkpoint import find_latest_checkpoint
        path = cfg.get('load_from', None) or (
            cfg.get('resume', False)
            and find_latest_checkpoint(cfg.work_dir)) or 'the checkpoint'
        raise CheckpointMismatchError(f'{path}: {e}', path) from e


@contextlib.contextmanager
def hinting_how_to_continue(cfg: Config) -> Iterator[None]:
    """Give a Ctrl-C of training the way to go on, as its message."""
    try:
        yield
    except KeyboardInterrupt:
        hint = CONTINUE_HINT if find_existing_checkpoints(cfg) else (
            'no checkpoint was written yet: --resume would start over from '
            'the beginning')
        raise KeyboardInterrupt(hint) from None


def output_beside(out: str, suffix: str, force: bool) -> str:
    """The path beside ``out`` with ``suffix``; ValueError where either
    would be lost."""
    beside = osp.splitext(out)[0] + suffix
    if beside == out:
        raise ValueError(f'out={out}: the output and its {suffix} file '
                         'would be the same file; give the output another '
                         'suffix')
    existing = [p for p in (out, beside) if osp.exists(p)]
    if existing and not force:
        raise ValueError(f'{" and ".join(existing)} exist(s); refusing to '
                         'overwrite (pass --force to replace)')
    return beside


def new_output(out: str, force: bool, inputs=()) -> str:
    """``out`` if writing it loses nothing, else ValueError."""
    for path in inputs:
        if osp.exists(path) and osp.exists(out) and osp.samefile(path, out):
            raise ValueError(f'--out {out} is the input {path}; refusing to '
                             'overwrite it')
    if osp.exists(out) and not force:
        raise ValueError(f'{out} exists; refusing to overwrite it (pass '
                         '--force to replace it)')
    return out


def load_config(path: str, tool: str) -> Config:
    """``Config.fromfile``; a missing file exits naming the closest one."""
    if not osp.isfile(path):
        # Configs near it: its folder's, ./configs' and the repo's.
        folders = {osp.dirname(path) or '.', 'configs',
                   osp.join(_REPO, 'configs')}
        found: List[str] = []
        for folder in sorted(f for f in folders if osp.isdir(f)):
            found += glob.glob(osp.join(glob.escape(folder), '**', '*.py'),
                               recursive=True)
        names = {osp.basename(p): p for p in found
                 if f'{osp.sep}_base_{osp.sep}' not in p}
        close = difflib.get_close_matches(osp.basename(path), list(names),
                                          n=1, cutoff=0.6)
        shown = close and names[close[0]]
        if shown and not osp.isabs(path):
            shown = osp.relpath(shown)
        hint = f'; did you mean {shown}?' if shown else ''
        sys.exit(f'{tool}: error: config file {path} does not exist{hint}')
    return Config.fromfile(path)


@contextlib.contextmanager
def reporting_run_errors(tool: str) -> Iterator[None]:
    """End a failed (exit 1) or interrupted (130) run with one clear line.
    """
    try:
        yield
    except KeyboardInterrupt as e:
        from mmengine.logging import MessageHub
        hub = MessageHub.get_current_instance()
        epoch, step = hub.get_info('epoch'), hub.get_info('iter')
        hint = str(e)
        where = 'stopped'
        if epoch is not None and step is not None:
            where = f'stopped in epoch {epoch + 1}, after iteration {step}'
            hint = hint or CONTINUE_HINT
        if hint:
            where = f'{where}; {hint}'
        print(f'\n{tool}: {where}', file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    except Exception as e:  # noqa: B902  (every error ends the same way)
        traceback.print_exc()
        first = str(e).strip() or 'no message'
        sys.stderr.flush()
        raise SystemExit(
            f'{tool}: error: {type(e).__name__}: {first}') from None
