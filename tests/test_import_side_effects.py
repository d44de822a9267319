"""Importing mmpromptkd changes nothing for other OpenMMLab models.

A fresh interpreter imports torch, numpy, mmengine, mmpretrain (with all its
modules registered) and open_clip, records every attribute of every module
they loaded and of every class defined there, then imports mmpromptkd and
compares. The only allowed differences are additions made through the
libraries' extension points: new submodules, the ``'atomic_local'`` file
backend and the ``mmpromptkd://`` checkpoint scheme. torch's global
unpickling allowlist, mmengine's registries and the default scope are
compared by content, and so are timm's and open_clip's model lists.
"""
import json
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]

PROBE = r'''
import json, sys, types, warnings
warnings.filterwarnings('ignore')
import numpy, torch, mmengine, mmpretrain, open_clip, timm
from mmpretrain.utils import register_all_modules
register_all_modules(init_default_scope=False)
from mmengine.fileio.backends import registry_utils
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import CheckpointLoader
import mmpretrain.registry as pretrain_registry
import mmengine.registry as engine_registry

PREFIXES = ('torch', 'numpy', 'mmengine', 'mmpretrain', 'mmcv', 'open_clip',
            'timm',
            'pickle', 'copyreg', 'io', 'os', 'builtins')


def snapshot():
    attrs = {}
    for name, module in list(sys.modules.items()):
        if module is None or not name.split('.')[0] in PREFIXES:
            continue
        for key, value in list(vars(module).items()):
            attrs[f'{name}:{key}'] = id(value)
            if isinstance(value, type) and \
                    getattr(value, '__module__', None) == name:
                for ckey, cvalue in list(vars(value).items()):
                    attrs[f'{name}:{key}.{ckey}'] = id(cvalue)
    return attrs


def registries():
    out = {}
    for mod in (pretrain_registry, engine_registry):
        for key, value in vars(mod).items():
            if isinstance(value, engine_registry.Registry):
                out[f'{mod.__name__}.{key}'] = sorted(
                    (k, id(v)) for k, v in value.module_dict.items())
    return out


def state():
    return dict(
        safe_globals=sorted(map(repr, torch.serialization.get_safe_globals())),
        schemes=sorted((k, id(v)) for k, v in CheckpointLoader._schemes.items()),
        backends=sorted((k, id(v)) for k, v in registry_utils.backends.items()),
        prefixes=sorted(
            (k, id(v)) for k, v in registry_utils.prefix_to_backends.items()),
        registries=registries(),
        default_scope=DefaultScope.get_current_instance() is not None,
        dtype=str(torch.get_default_dtype()),
        grad=torch.is_grad_enabled(),
        threads=torch.get_num_threads(),
        warnings=len(warnings.filters),
        timm_models=timm.list_models(),
        open_clip_models=open_clip.list_models(),
    )


before_attrs, before = snapshot(), state()
import mmpromptkd  # noqa
after_attrs, after = snapshot(), state()
changed = sorted(k for k in before_attrs
                 if after_attrs.get(k) != before_attrs[k])
added = sorted(
    k for k in after_attrs if k not in before_attrs
    and k.split(':')[0] in {n.split(':')[0] for n in before_attrs}
    and not isinstance(
        getattr(sys.modules[k.split(':')[0]], k.split(':')[1].split('.')[0],
                None), types.ModuleType))
print(json.dumps(dict(changed=changed, added=added, before=before,
                      after=after)))
'''


def _probe() -> dict:
    result = subprocess.run([sys.executable, '-c', PROBE],
                            capture_output=True, text=True, cwd=REPO,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_changes_nothing_of_other_libraries():
    report = _probe()
    # register_scheme rebuilds the (sorted) scheme table; its content is
    # compared below.
    changed = [k for k in report['changed']
               if k != 'mmengine.runner.checkpoint:CheckpointLoader._schemes']
    assert changed == [], 'attributes replaced on import'
    assert report['added'] == [], 'attributes added to foreign modules'
    before, after = report['before'], report['after']
    for key in ('safe_globals', 'prefixes', 'registries', 'default_scope',
                'dtype', 'grad', 'threads', 'warnings', 'timm_models',
                'open_clip_models'):
        assert after[key] == before[key], key
    # Extension points: additions only, under names of our own.
    added_schemes = {k for k, _ in after['schemes']} - {
        k for k, _ in before['schemes']}
    assert added_schemes == {'mmpromptkd://'}
    assert set(map(tuple, before['schemes'])) <= set(
        map(tuple, after['schemes']))
    added_backends = {k for k, _ in after['backends']} - {
        k for k, _ in before['backends']}
    assert added_backends == {'atomic_local'}
    assert set(map(tuple, before['backends'])) <= set(
        map(tuple, after['backends']))
