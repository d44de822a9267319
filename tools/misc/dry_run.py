"""Prove that a config runs, on generated data, before a GPU hour is spent.

Train, resume, test and export on stand-ins, writing only into the work dir;
see README.md, "Train and test", and docs/inputs.md (``--check-inputs``).
"""
import argparse
import ast
import contextlib
import glob
import math
import os
import os.path as osp
import shutil
import sys
import time
from typing import Callable, Dict, Iterator, List, Optional

_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
for _path in (_REPO, osp.dirname(osp.abspath(__file__))):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402

import config_inputs  # noqa: E402
import miniature_data  # noqa: E402
from config_inputs import bare_type  # noqa: E402
from random_clip_weights import (DISTILLERS, TINY_IMAGE_SIZE,  # noqa: E402
                                 RandomWeights, prepare_model,
                                 tiny_timm_trunks)
from run_cli import (CfgOptionsAction, load_config,  # noqa: E402
                     merge_cfg_options)
from tool_scripts import load_tool, status_mib  # noqa: E402

#: Classes of a miniature (half base, half novel) unless --classes says.
NUM_CLASSES = 4
#: Models with nothing to train: their configs are evaluated only.
EVALUATION_ONLY = ('ZeroShotCLIPClassifier', )
#: CoOpDataset's arguments naming the user's folders and files.
LAYOUT_KEYS = ('dataset_dir', 'image_dir', 'split_file')
#: Keys of an output folder or file, anywhere in a config.
OUTPUT_FOLDER_KEYS = ('out_dir', 'save_dir', 'collect_dir', 'show_dir',
                      'log_dir', 'output_dir', 'tmpdir', 'dir_name')
OUTPUT_FILE_KEYS = ('out_file', 'out_file_path', 'json_trace_path')
#: Names LocalVisBackend joins to its ``save_dir``.
INSIDE_SAVE_DIR_KEYS = ('img_save_dir', 'config_save_file',
                        'scalar_save_file')
#: Hooks that write under ``<out_dir>/<last folder of the work dir>``.
PHASE_FOLDER_HOOKS = ('CheckpointHook', 'SafeCheckpointHook', 'LoggerHook')
#: Vis backends that write only under their ``save_dir``.
LOCAL_VIS_BACKENDS = ('LocalVisBackend', 'TensorboardVisBackend')


def _shrink_pipeline(pipeline: list) -> None:
    for transform in pipeline:
        for key in ('scale', 'crop_size', 'size'):
            value = transform.get(key)
            if isinstance(value, int):
                transform[key] = TINY_IMAGE_SIZE
            elif isinstance(value, (list, tuple)):  # (w, h), e.g. Resize
                transform[key] = (TINY_IMAGE_SIZE, ) * len(value)


class MiniatureData:
    """Writes each dataset's miniature once under ``root`` and points the
    configs at it; ``tiny`` shrinks the pipelines to the tiny models' size.
    """

    def __init__(self, root: str, num_classes: int, train_per_class: int,
                 tiny: bool) -> None:
        self.root = root
        self.num_classes = num_classes
        self.train_per_class = train_per_class
        self.tiny = tiny
        # At least 40: a held-out 5 % is one image or more.
        self.unlabeled = max(40, num_classes * train_per_class)
        self.written: Dict[str, dict] = {}
        # Every TeacherCachedDataset reads this one, never the config's.
        self.teacher_cache = osp.join(osp.dirname(root), 'teacher_cache')

    def _once(self, name: str,
              write: Callable[[str], Optional[dict]]) -> dict:
        """``write(folder)`` once per name; its settings or ``data_root``."""
        if name not in self.written:
            folder = osp.join(self.root, name)
            self.written[name] = write(folder) or dict(data_root=folder)
        return self.written[name]

    def prepare(self, dataset: dict) -> None:
        """Point ``dataset`` (and what it wraps) at generated data."""
        name = bare_type(dataset.get('type'))
        if self.tiny and isinstance(dataset.get('pipeline'), list):
            _shrink_pipeline(dataset['pipeline'])
        for inner in [dataset.get('dataset'), *dataset.get('datasets', [])]:
            if isinstance(inner, dict):
                self.prepare(inner)
        if name == 'TeacherCachedDataset':
            dataset['cache'] = self.teacher_cache
            return
        if name in ('NestedSubset', 'ConcatDataset'):
            return
        # The class's own layout: never the user's folders the config names
        # (an absolute dataset_dir is the user's real data, where a few-shot
        # draw would be written).
        for key in LAYOUT_KEYS:
            dataset.pop(key, None)
        if name == 'SyntheticShapes':
            dataset.update(self._once(name, self._synthetic_shapes))
        elif name == 'UnlabeledImages':
            dataset.pop('file_list', None)
            dataset.update(self._once(name, self._unlabeled))
        elif name == 'UnlabeledShards':
            dataset.update(self._once(name, self._shards))
        else:
            dataset.update(self._once(name, lambda folder: (
                miniature_data.write_layout(name, folder, self.num_classes,
                                            self.train_per_class))))

    def _synthetic_shapes(self, folder: str) -> None:
        from synthetic_shapes import generate_coop_dataset
        generate_coop_dataset(
            folder, num_classes=self.num_classes,
            train_per_class=self.train_per_class,
            val_per_class=miniature_data.EVAL_PER_CLASS,
            test_per_class=miniature_data.EVAL_PER_CLASS)

    def _unlabeled(self, folder: str) -> dict:
        # Tiny configs may read unlabeled images without resizing them.
        size = TINY_IMAGE_SIZE if self.tiny else miniature_data.IMAGE_SIZE
        return miniature_data.write_unlabeled_folder(
            folder, self.num_classes, self.unlabeled, size)

    def _shards(self, folder: str) -> dict:
        # The unlabeled images in two tar shards.
        images = self._unlabeled(folder + '_images')
        shards = load_tool('misc/images_to_shards.py')
        per_shard = math.ceil(self.unlabeled / 2)
        shards.main([images['data_root'], folder, '--images-per-shard',
                     str(per_shard)])
        return dict(shards=osp.join(folder, 'shard-{000000..000001}.tar'),
                    classes=images['classes'])


def prepare_data(cfg: Config, data: MiniatureData) -> None:
    """Every dataloader of ``cfg`` reads a generated miniature."""
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(field)
        if loader is not None:
            dataset = loader.dataset.to_dict()
            data.prepare(dataset)
            loader.dataset = dataset


def _output_folder(work_dir: str, where: str) -> str:
    """The work dir's folder for the config key ``where``."""
    return osp.join(work_dir, 'outputs',
                    where.replace('[', '.').replace(']', ''))


def _keep_inside(node, where: str, work_dir: str) -> None:
    """Point every output location under ``node`` into ``work_dir``."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            _keep_inside(item, f'{where}[{i}]', work_dir)
        return
    if not isinstance(node, dict):
        return
    kind = bare_type(node.get('type'))
    if isinstance(node.get('vis_backends'), list):
        for i, backend in enumerate(node['vis_backends']):
            name = bare_type(backend.get('type'))
            if name not in LOCAL_VIS_BACKENDS:
                print(f'  ({where}.vis_backends[{i}]: {name} sends outside '
                      'the work dir; LocalVisBackend in its place)')
                node['vis_backends'][i] = dict(type='LocalVisBackend')
    for key, value in list(node.items()):
        here = f'{where}.{key}' if where else key
        if isinstance(value, (dict, list)):
            _keep_inside(value, here, work_dir)
        elif not isinstance(value, str) or not value:
            continue
        elif key == 'out_dir' and kind in PHASE_FOLDER_HOOKS:
            node[key] = work_dir
        elif key in OUTPUT_FOLDER_KEYS:
            node[key] = _output_folder(work_dir, here)
        elif key in OUTPUT_FILE_KEYS:
            # The file name is kept: tools check its suffix ('.pkl').
            node[key] = osp.join(_output_folder(work_dir, here),
                                 osp.basename(value))
        elif key in INSIDE_SAVE_DIR_KEYS and (osp.isabs(value) or '..' in (
                value.replace('\\', '/').split('/'))):
            node[key] = osp.basename(value)  # it would leave save_dir


def keep_outputs_inside(cfg: Config, work_dir: str) -> None:
    """Redirect every output location of ``cfg`` into ``work_dir``."""
    for key in list(cfg.keys()):
        value = cfg[key]
        if isinstance(value, (dict, list)):
            _keep_inside(value, key, work_dir)  # in place
        elif key in OUTPUT_FOLDER_KEYS and isinstance(value, str):
            cfg[key] = _output_folder(work_dir, key)


def set_schedule(cfg: Config, length: int) -> None:
    """Train ``length`` epochs (or iterations), keeping every checkpoint."""
    train_cfg = cfg.train_cfg
    by_iter = train_cfg.get('max_iters') is not None or \
        train_cfg.get('by_epoch') is False
    train_cfg['max_iters' if by_iter else 'max_epochs'] = length
    if 'val_interval' in train_cfg:
        train_cfg.val_interval = 1
    # Each one kept, so that a run can resume from the first.
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=-1)
    for hook in cfg.get('custom_hooks') or []:
        if bare_type(hook.get('type')) == 'GaussianPromptAggregationHook':
            hook['mean'] = 1.0  # within the short schedule


@contextlib.contextmanager
def _output_to(log: str) -> Iterator[None]:
    """Send stdout and stderr (Python's and the C libraries') to ``log``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, 'a') as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


class PhaseFailed(RuntimeError):
    """A phase of the dry run failed; the message says how."""


def run_phase(name: str, work_dir: str, call: Callable[[], object]) -> None:
    """Run one phase, print its time and peak memory; PhaseFailed if not."""
    log = osp.join(work_dir, f'{name}.log')
    # Resets VmHWM to the current resident size.
    with contextlib.suppress(OSError), open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    error = None
    with _output_to(log):
        try:
            call()
        except SystemExit as e:
            if e.code not in (None, 0):
                error = str(e.code)
        except Exception as e:  # noqa: B902  (reported, with the log)
            import traceback
            traceback.print_exc()
            error = f'{type(e).__name__}: {e}'
    seconds = time.perf_counter() - start
    peak = status_mib('VmHWM')
    figures = f'{seconds:7.1f} s   peak RSS {peak:8.0f} MiB'
    if torch.cuda.is_available():
        figures += (f'   peak CUDA '
                    f'{torch.cuda.max_memory_allocated() / 2**20:8.0f} MiB')
    print(f'  {name:<8}{figures}', flush=True)
    if error is not None:
        raise PhaseFailed(f'phase {name}: {error.strip().splitlines()[-1]} '
                          f'(log: {log})')


def _load(config: str, cfg_options: Optional[dict]) -> Config:
    cfg = load_config(config, 'dry_run.py')
    merge_cfg_options(cfg, cfg_options)
    return cfg


def _first_base(config: str) -> Optional[str]:
    """The first ``_base_`` file of a config, read without running it."""
    with open(config, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                getattr(t, 'id', None) == '_base_' for t in node.targets):
            value = ast.literal_eval(node.value)
            first = value[0] if isinstance(value, list) else value
            return osp.normpath(osp.join(osp.dirname(config), first))
    return None


class DryRun:
    """The dry run of one config.

    Args:
        config (str): The config file.
        work_dir (str): Where everything is written.
        tiny (bool): Tiny models of the config's CLIP families.
        quick (bool): Train one epoch (iteration) without validation and
            test it, nothing else.
        cfg_options (dict, optional): ``--cfg-options``, applied first.
        num_classes (int): Classes of the miniatures (at least 2).
    """

    def __init__(self, config: str, work_dir: str, tiny: bool = False,
                 quick: bool = False, cfg_options: Optional[dict] = None,
                 num_classes: int = NUM_CLASSES) -> None:
        if num_classes < 2:
            raise ValueError(f'--classes must be at least 2 (base and '
                             f'novel), got {num_classes}')
        self.num_classes = num_classes
        self.config = config
        self.work_dir = osp.abspath(work_dir)
        self.tiny = tiny
        self.quick = quick
        self.cfg_options = cfg_options

    def _prepared(self, config: str, data: MiniatureData,
                  length: int) -> Config:
        cfg = _load(config, self.cfg_options)
        prepare_model(cfg, self.weights)
        # The phases load only their own checkpoints.
        cfg.load_from = None
        prepare_data(cfg, data)
        keep_outputs_inside(cfg, self.work_dir)
        set_schedule(cfg, length)
        return cfg

    def _dump(self, cfg: Config, name: str) -> str:
        # JSON: no formatting of Python code (a quarter second a config).
        path = osp.join(self.work_dir, name)
        cfg.dump(path)
        return path

    def _phase(self, name: str, tool, *args: str) -> None:
        run_phase(name, self.work_dir, lambda: tool.main(list(args)))

    def _record_cache(self, data: MiniatureData, epochs: int,
                      cached: dict) -> None:
        """Record the cache of the config's first base; ``cached`` reads it.
        """
        ensemble = cached.get('ensemble')
        online = _first_base(self.config)
        if online is None:
            raise PhaseFailed(f'{self.config} trains on a teacher cache but '
                              'names no _base_ config with the teacher')
        cfg = self._prepared(online, data, epochs)
        path = self._dump(cfg, 'online_config.json')
        recorder = load_tool('misc/cache_teacher_logits.py')
        args = [path, '--epochs', str(epochs)]
        if ensemble is None:
            self._phase('cache', recorder, *args, '--out', data.teacher_cache)
            cached['cache'] = data.teacher_cache
            return
        members = len(cfg.model.teacher.members)
        cached['cache'] = [f'{data.teacher_cache}_member{i}'
                           for i in range(members)]
        cached['ensemble'] = cfg.model.teacher
        for i, out in enumerate(cached['cache']):
            self._phase(f'cache_member{i}', recorder, *args, '--out', out,
                        '--member', str(i))

    def run(self) -> None:
        """Run every phase; raises :class:`PhaseFailed` at the first error."""
        with tiny_timm_trunks() if self.tiny else contextlib.nullcontext():
            self._run()

    def _run(self) -> None:
        if osp.exists(self.work_dir) and not osp.isdir(self.work_dir):
            raise PhaseFailed(f'work dir {self.work_dir} (--work-dir) is not '
                              'a folder: give an empty or new folder')
        if osp.exists(self.work_dir) and os.listdir(self.work_dir):
            raise PhaseFailed(f'work dir {self.work_dir} is not empty: a dry '
                              'run starts in an empty (or new) folder')
        try:
            os.makedirs(self.work_dir, exist_ok=True)
        except OSError as e:  # e.g. a file where a parent folder should be
            raise PhaseFailed(f'work dir {self.work_dir} (--work-dir) cannot '
                              f'be created: {e.strerror}: give an empty or '
                              'new folder') from e
        kind = ("tiny models of the config's CLIP families" if self.tiny
                else "random weights of the config's architectures")
        print(f'dry run of {self.config} ({kind}), work dir {self.work_dir}',
              flush=True)
        length = 1 if self.quick else 2
        probe = load_config(self.config, 'dry_run.py')
        # At least one batch per epoch, also of the base half of the classes.
        per_class = max(2, math.ceil(probe.train_dataloader.batch_size /
                                     (self.num_classes // 2)))
        data = MiniatureData(osp.join(self.work_dir, 'data'),
                             self.num_classes, per_class, self.tiny)
        self.weights = RandomWeights(osp.join(self.work_dir, 'weights'),
                                     self.tiny)
        cfg = self._prepared(self.config, data, length)
        dataset = cfg.train_dataloader.dataset
        if bare_type(dataset.get('type')) == 'TeacherCachedDataset':
            self._record_cache(data, 2, dataset)
        config = self._dump(cfg, 'config.json')
        test = load_tool('test.py')
        test_dir = osp.join(self.work_dir, 'test')
        if bare_type(cfg.model.get('type')) in EVALUATION_ONLY:
            self._phase('test', test, config, '--work-dir', test_dir)
            return
        train_dir = osp.join(self.work_dir, 'train')
        train = load_tool('train.py')
        options = ['--no-validate'] if self.quick else []
        self._phase('train', train, config, '--work-dir', train_dir, *options)
        checkpoints = sorted(
            (osp.getmtime(p), p)
            for p in glob.glob(osp.join(train_dir, '*_[0-9]*.pth')))
        last = checkpoints[-1][1]
        if self.quick:
            self._phase('test', test, config, last, '--work-dir', test_dir)
            return
        # The last epoch again, resumed from the first one's checkpoint.
        resume_dir = osp.join(self.work_dir, 'resume')
        os.makedirs(resume_dir)
        first = shutil.copy(checkpoints[0][1], resume_dir)
        self._phase('resume', train, config, '--work-dir', resume_dir,
                    '--resume', first)
        self._phase('test', test, config, last, '--work-dir', test_dir)
        if cfg.model.get('type') in DISTILLERS:
            self._phase('export', load_tool(
                'model_converters/export_student.py'), config, last,
                osp.join(self.work_dir, 'student.pth'))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add = parser.add_argument
    add('config', help='training config')
    add('--tiny', action='store_true',
        help="tiny models of the config's CLIP families instead of random "
        'weights of the real architectures')
    add('--quick', action='store_true',
        help='train one epoch (iteration) without validation and test it, '
        'nothing else')
    add('--classes', type=int, default=NUM_CLASSES,
        help='classes of the generated data (the memory of text features '
        f'grows with them); defaults to {NUM_CLASSES}')
    add('--work-dir', help='an empty or new folder; defaults to '
        'work_dirs/dry_run/<config name>')
    add('--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override settings of the config first')
    add('--check-inputs', action='store_true',
        help='only list the real inputs the config needs (weights, '
        'checkpoints, data), whether each exists and where it comes from; '
        'exit 1 if any is missing')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Dry-run a config; returns the exit status."""
    args = parse_args(argv)
    if args.check_inputs:
        return config_inputs.print_inputs(config_inputs.find_inputs(
            _load(args.config, args.cfg_options)), args.config)
    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', 'dry_run', name)
    try:
        DryRun(args.config, work_dir, args.tiny, args.quick,
               args.cfg_options, args.classes).run()
    except (PhaseFailed, ValueError) as e:
        print(f'dry run failed: {args.config}: {e}', flush=True)
        return 1
    # What the run did not prove: the real inputs, and what stood in.
    inputs = config_inputs.find_inputs(_load(args.config, args.cfg_options))
    config_inputs.print_inputs(inputs, args.config)
    missing = sum(not i.exists for i in inputs)
    replaced = config_inputs.stand_ins(inputs, args.tiny)
    state = (f'{missing} of {len(inputs)} missing, listed above' if missing
             else f'all {len(inputs)} present')
    print(f'dry run ok: {args.config} (on stand-ins: '
          f'{", ".join(replaced) or "none"}; real inputs: {state})',
          flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
