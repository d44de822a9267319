"""The real inputs a config reads (the table of docs/inputs.md), where they
are and where they come from; nothing is built, opened or downloaded.
"""
import glob
import os.path as osp
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

#: The guide to every input.
DOCS = 'docs/inputs.md'
#: CoOp's data preparation guide (folders and split files).
COOP_DATASETS = 'https://github.com/KaiyangZhou/CoOp/blob/main/DATASETS.md'
#: Where each dataset class's data comes from.
DATASET_SOURCES = dict(
    {
        f'CoOp{name}': f'{COOP_DATASETS} ({name})'
        for name in ('ImageNet', 'Caltech101', 'OxfordPets', 'StanfordCars',
                     'Food101', 'FGVCAircraft', 'SUN397', 'DTD', 'EuroSAT',
                     'UCF101', 'ImageNetV2')
    },
    CoOpOxfordFlowers=f'{COOP_DATASETS} (Flowers102)',
    CoOpImageNetSketch=f'{COOP_DATASETS} (ImageNet-Sketch)',
    CoOpImageNetA=f'{COOP_DATASETS} (ImageNet-A)',
    CoOpImageNetR=f'{COOP_DATASETS} (ImageNet-R)',
    SyntheticShapes='python tools/misc/generate_shapes_dataset.py '
    '(docs/synthetic_shapes.md)')
#: What a dry run uses in place of each kind of input.
STAND_INS = {
    'CLIP weights': 'random CLIP weights',
    'tokenizer': 'a small stand-in tokenizer',
    'teacher checkpoint': 'an untrained teacher (random prompts)',
    'checkpoint': 'no checkpoint',
    'data': 'generated data',
    'teacher cache': 'a teacher cache recorded on the fly',
}
#: Dataset arguments that name files or folders of unlabeled data.
UNLABELED_KEYS = ('data_root', 'file_list', 'classes')


@dataclass
class Input:
    """One file or folder a config reads (``kind``: a key of STAND_INS)."""

    key: str
    path: str
    kind: str
    what: str
    source: str
    exists: bool


def bare_type(type_name) -> str:
    """A registry type without its scope."""
    return str(type_name).split('.')[-1]


def _join(where: str, key) -> str:
    if isinstance(key, int):
        return f'{where}[{key}]'
    return f'{where}.{key}' if where else str(key)


def _file(key: str, path: str, kind: str, what: str, source: str) -> Input:
    return Input(key, path, kind, what, source,
                 osp.exists(osp.expanduser(path)))


def _openai_url(path: str) -> Optional[str]:
    """OpenAI's URL of a CLIP file, from open_clip's table, by file name."""
    import open_clip
    for model_name, tag in open_clip.list_pretrained():
        if tag != 'openai':
            continue
        url = open_clip.get_pretrained_cfg(model_name, tag).get('url', '')
        if url and osp.basename(url) == osp.basename(path):
            return url
    return None


def _pretrained_file(model_name: str, tag: str,
                     cache_dir: Optional[str]) -> Tuple[str, bool, str]:
    """(file, exists, source) of the cache file a pretrained tag names."""
    import open_clip
    from huggingface_hub.constants import HF_HUB_CACHE

    from mmpromptkd.models.clip.clip_builder import _cached_pretrained_file
    cfg = open_clip.get_pretrained_cfg(model_name, tag) or {}
    # 'org/repo/' means open_clip's default file names, 'org/repo/file' one.
    hub = (cfg.get('hf_hub') or '').split('/')
    repo = '/'.join(hub[:2]) if len(hub) >= 2 else ''
    source = f'https://huggingface.co/{repo}' if repo else cfg.get(
        'url') or f'{DOCS}#open_clip-weights-and-tokenizers'
    try:
        # The lookup the model builder does, so the two never disagree.
        return _cached_pretrained_file(model_name, tag,
                                       cache_dir), True, source
    except (FileNotFoundError, ValueError):
        pass
    if repo:
        filename = hub[2] if len(hub) > 2 and hub[2] else \
            'open_clip_model.safetensors'
        cache = cache_dir or HF_HUB_CACHE
        return (f'{cache}/models--{repo.replace("/", "--")} ({repo}/'
                f'{filename})'), False, source
    if cfg.get('url'):
        root = cache_dir or osp.expanduser('~/.cache/clip')
        return osp.join(root, osp.basename(cfg['url'])), False, source
    return f'{model_name} / {tag}: not an open_clip tag', False, source


def _tokenizer(key: str, name: str) -> Input:
    from huggingface_hub.constants import HF_HUB_CACHE

    from mmpromptkd.models.clip.hf_tokenizer import find_tokenizer_file
    try:
        path, exists = find_tokenizer_file(name), True
    except FileNotFoundError:
        path = (f'{HF_HUB_CACHE}/models--{name.replace("/", "--")} '
                f'({name}/tokenizer.json)')
        exists = False
    source = name if osp.isdir(name) else f'https://huggingface.co/{name}'
    return Input(key, path, 'tokenizer', 'Hugging Face tokenizer', source,
                 exists)


def _clip_inputs(clip: dict, where: str) -> Iterator[Input]:
    """The weight file and tokenizer of a ``clip=dict(...)`` source."""
    text_cfg = {}
    if isinstance(clip.get('openai_file'), str):
        path = clip['openai_file']
        url = _openai_url(path)
        yield _file(f'{where}.openai_file', path, 'CLIP weights',
                    'OpenAI CLIP file', url or f'{DOCS}#openai-clip-weights')
    if isinstance(clip.get('model_name'), str):
        import open_clip
        name = clip['model_name']
        model_cfg = open_clip.get_model_config(name) or {}
        text_cfg = model_cfg.get('text_cfg') or {}
        if isinstance(clip.get('pretrained'), str):
            path, exists, source = _pretrained_file(name, clip['pretrained'],
                                                    clip.get('cache_dir'))
            yield Input(f'{where}.pretrained', path, 'CLIP weights',
                        f'open_clip {name} / {clip["pretrained"]}', source,
                        exists)
    if isinstance(clip.get('model_cfg'), dict):
        text_cfg = clip['model_cfg'].get('text_cfg') or {}
    if isinstance(clip.get('checkpoint'), str):
        yield _file(f'{where}.checkpoint', clip['checkpoint'], 'CLIP weights',
                    'CLIP checkpoint', f'{DOCS}#a-local-weight-file')
    if isinstance(text_cfg.get('hf_tokenizer_name'), str):
        yield _tokenizer(f'{where}.text_cfg.hf_tokenizer_name',
                         text_cfg['hf_tokenizer_name'])


def _checkpoint_source(path: str) -> str:
    """A teacher trained here names its config; others are released ones."""
    parts = osp.normpath(path).split(osp.sep)
    if len(parts) > 2 and parts[0] == 'work_dirs':
        configs = glob.glob(osp.join(osp.dirname(osp.dirname(osp.dirname(
            osp.abspath(__file__)))), 'configs', '**', parts[1] + '.py'),
            recursive=True)
        if configs:
            shown = osp.join(*configs[0].split(osp.sep)[-3:])
            return f'python tools/train.py {shown} (docs/teachers.md)'
    return f'{DOCS}#teachers'


def _coop_paths(cls: type, dataset: dict) -> Iterator[Tuple[str, str]]:
    """``(what, path)`` a CoOp dataset checks (its ``_required_paths``)."""
    from mmpromptkd.datasets.utils import join_nonempty
    probe = cls.__new__(cls)
    for name in ('dataset_dir', 'image_dir', 'split_file'):
        if dataset.get(name) is not None:
            setattr(probe, name, dataset[name])
    # As CoOpDataset.__init__ derives them.
    probe._root = osp.expanduser(dataset['data_root'])
    probe._dataset_root = join_nonempty(probe._root, probe.dataset_dir)
    probe._image_root = join_nonempty(probe._dataset_root, probe.image_dir)
    probe.split = dataset.get('split') or probe.splits[0]
    probe.num_shots = dataset.get('num_shots', -1)
    root = [] if probe._dataset_root == probe._root else [probe._dataset_root]
    for path in root + probe._required_paths():
        if path == probe._dataset_root:
            what = 'dataset folder'
        elif path.startswith(probe._image_root) and \
                not osp.splitext(path)[1]:
            what = 'image folder'
        else:
            what = osp.basename(path)
        yield what, path


def _expand(shards) -> List[str]:
    """The tar files of brace patterns, whether they exist or not."""
    patterns = [shards] if isinstance(shards, str) else list(shards or [])
    try:
        from braceexpand import braceexpand  # installed with webdataset
    except ImportError:
        return [str(p) for p in patterns]
    return [p for pattern in patterns for p in braceexpand(str(pattern))]


def _dataset_inputs(dataset: dict, where: str) -> Iterator[Input]:
    """The files and folders of a dataset dict (not what it wraps)."""
    from mmpromptkd.registry import DATASETS
    name = bare_type(dataset.get('type'))
    cls = DATASETS.get(name)
    if name == 'TeacherCachedDataset':
        caches = dataset.get('cache')
        listed = not isinstance(caches, str)
        for i, cache in enumerate([caches] if not listed else caches or []):
            member = f' --member {i}' if listed else ''
            yield _file(f'{where}.cache' + (f'[{i}]' if listed else ''),
                        cache, 'teacher cache', 'teacher cache folder',
                        f'python tools/misc/cache_teacher_logits.py{member} '
                        '(docs/teacher_cache.md)')
        return
    if name == 'UnlabeledShards':
        shards = dataset.get('shards')
        paths = _expand(shards)
        missing = [p for p in paths if not osp.isfile(osp.expanduser(p))]
        what = f'tar shards ({len(missing)} of {len(paths)} missing)' \
            if missing else f'tar shards ({len(paths)})'
        yield Input(f'{where}.shards', str(shards), 'data', what,
                    'python tools/misc/images_to_shards.py '
                    '(docs/unlabeled_data.md)', bool(paths) and not missing)
    if name in ('UnlabeledImages', 'UnlabeledShards'):
        for key in UNLABELED_KEYS:
            if isinstance(dataset.get(key), str):
                yield _file(f'{where}.{key}', dataset[key], 'data',
                            f'{name} {key}',
                            'your own images (docs/unlabeled_data.md)')
        return
    from mmpromptkd.datasets import CoOpDataset
    if isinstance(cls, type) and issubclass(cls, CoOpDataset) and \
            isinstance(dataset.get('data_root'), str):
        source = DATASET_SOURCES.get(name, f'{DOCS}#datasets')
        for what, path in _coop_paths(cls, dataset):
            yield _file(f'{where}.data_root', path, 'data', f'{name} {what}',
                        source)
    elif isinstance(dataset.get('data_root'), str):
        yield _file(f'{where}.data_root', dataset['data_root'], 'data',
                    f'{name} data root', f'{DOCS}#datasets')


def _walk(node, where: str) -> Iterator[Input]:
    if isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from _walk(item, _join(where, i))
        return
    if not isinstance(node, dict):
        return
    from mmpromptkd.registry import DATASETS
    name = bare_type(node.get('type'))
    is_dataset = 'type' in node and DATASETS.get(name) is not None
    cached = is_dataset and name == 'TeacherCachedDataset'
    if is_dataset:
        yield from _dataset_inputs(node, where)
    for key, value in node.items():
        here = _join(where, key)
        if cached and key == 'ensemble':
            continue  # compared with the caches' records, never built
        if key == 'clip' and isinstance(value, dict):
            yield from _clip_inputs(value, here)
        elif key in ('checkpoint', 'load_from') and isinstance(value, str):
            kind = 'teacher checkpoint' if where.split('.')[-1] == 'teacher' \
                else 'checkpoint'
            yield _file(here, value, kind, kind, _checkpoint_source(value))
        elif isinstance(value, (dict, list, tuple)):
            yield from _walk(value, here)


def find_inputs(cfg) -> List[Input]:
    """Every real input of a config (a Config or dict), each path once."""
    import mmpromptkd.datasets  # noqa: F401  (registers the dataset types)
    config = cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)
    found = {}
    for item in _walk(config, ''):
        found.setdefault(item.path, item)
    return list(found.values())


def stand_ins(inputs: Sequence[Input], tiny: bool = False) -> List[str]:
    """What a dry run puts in place of these inputs, one phrase per kind."""
    words = []
    for item in inputs:
        # A tokenizer is replaced only where the real one is missing.
        if item.kind == 'tokenizer' and item.exists:
            continue
        stand_in = STAND_INS[item.kind]
        if item.kind == 'CLIP weights' and tiny:
            stand_in = "the project's tiny CLIPs"
        if stand_in not in words:
            words.append(stand_in)
    return words


def print_inputs(inputs: Sequence[Input], config: str) -> int:
    """Print each input and a summary; 0 if every input is there, else 1."""
    missing = [i for i in inputs if not i.exists]
    print(f'real inputs of {config} (relative paths from {osp.abspath(".")}'
          f'; sources in {DOCS}):')
    for item in inputs:
        state = 'ok     ' if item.exists else 'missing'
        print(f'  {state} {item.key}: {osp.normpath(item.path)}\n'
              f'          {item.what}, from {item.source}')
    if not inputs:
        print('  (none: the config reads no file or folder)')
    if missing:
        keys = list(dict.fromkeys(i.key for i in missing))
        print(f'inputs missing: {len(missing)} of {len(inputs)} '
              f'({", ".join(keys)}); nothing is downloaded at run time: '
              f'see {DOCS}')
        return 1
    print(f'inputs ok: all {len(inputs)} present')
    return 0
