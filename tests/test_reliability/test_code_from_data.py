"""No file makes the program import, call or change anything without pickle.

Three ways that need no pickled callable at all:

* a stored model config (an exported student's ``meta['model']``) that
  names ``os.system``: mmengine's registry would import and call it;
* a checkpoint URL: mmengine downloads it and unpickles it with
  ``weights_only=False``;
* a TorchScript ``data.pkl`` that uses the opcodes of a weight archive
  (GLOBAL, BUILD, REDUCE, ...) on class objects instead of tensors, e.g. a
  BUILD on ``torch.UntypedStorage`` that replaces attributes of the class in
  the running process.

Each payload would create a marker file or change a global; each test
checks that it did not, and that the error names the file.
"""
import http.server
import pickle
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
import torch

from mmpromptkd.apis import load_exported_student
from mmpromptkd.models.clip.clip_builder import build_clip
from mmpromptkd.utils import load_checkpoint_file, read_torchscript_state_dict
from reliability_utils import CONFIG, REPO
from tool_scripts import load_tool

MARKER_ATTR = 'mmpromptkd_test_marker'


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / 'MARKER'
    yield path
    assert not path.exists(), 'a file made the program run a command'


# --------------------------------------------------------------------- #
# Stored configs.
def _exported_file(path: Path, model_cfg: dict) -> Path:
    torch.save(
        dict(
            state_dict={},
            meta=dict(kind='mmpromptkd.exported_student', model=model_cfg)),
        path)
    return path


STUDENT = dict(type='PromptedCLIP', clip=dict(model_cfg=dict()))


@pytest.mark.parametrize('where', ['top', 'nested', 'scope', 'projector'])
def test_exported_student_config_builds_only_our_models(
        tmp_path, marker, where):
    command = f'touch {marker}'
    cfgs = dict(
        top=dict(type='os.system', command=command),
        nested=dict(type='PromptKDDistiller',
                    student=dict(type='os.system', command=command)),
        # A scope makes mmengine import "<scope>.registry".
        scope=dict(type='PromptKDDistiller', student=STUDENT,
                   _scope_='os'),
        projector=dict(type='PromptKDDistiller', student=STUDENT,
                       projector=[dict(type='subprocess.getoutput',
                                       cmd=command)]))
    path = _exported_file(tmp_path / 'student.pth', cfgs[where])
    with pytest.raises(ValueError) as e:
        load_exported_student(str(path))
    assert str(path) in str(e.value) and 'Nothing was built' in str(e.value)


def test_exported_student_payload_is_live(tmp_path):
    """The stored config above really would run a command unchecked."""
    from mmpromptkd.registry import MODELS
    probe = tmp_path / 'PROBE'
    MODELS.build(dict(type='os.system', command=f'touch {probe}'))
    assert probe.exists()


@pytest.mark.slow
def test_exported_student_in_a_fresh_process(tmp_path, marker):
    path = _exported_file(tmp_path / 'student.pth',
                          dict(type='os.system', command=f'touch {marker}'))
    code = ('from mmpromptkd.apis import load_exported_student\n'
            f'load_exported_student({str(path)!r})\n')
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert 'not a model of mmpromptkd' in result.stderr


# --------------------------------------------------------------------- #
# Remote checkpoints.
class _RunsCode:

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture
def server(tmp_path, marker):
    """A local HTTP server whose every file is a code-running pickle."""
    payload = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': _RunsCode(marker)}, payload)
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):

        def do_GET(self):
            requests.append(self.path)
            data = payload.read_bytes()
            self.send_response(200)
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_port}', requests
    httpd.shutdown()


REMOTE = 'remote checkpoints are not loaded'


def test_url_payload_is_live(server, tmp_path, monkeypatch):
    """mmengine's own URL loader runs the served payload."""
    import mmengine.runner.checkpoint as ckpt
    url, requests = server
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'hub'))
    probe = tmp_path / 'MARKER'
    ckpt.load_from_http(f'{url}/evil.pth', map_location='cpu')
    assert requests and probe.exists()
    probe.unlink()


@pytest.mark.parametrize('scheme', [
    'http', 'https', 'open-mmlab', 'openmmlab', 'torchvision', 'pavi', 's3',
    'modelzoo', 'mmcls'
])
def test_every_mmengine_scheme_is_refused(scheme, server):
    from mmengine.runner.checkpoint import CheckpointLoader
    url, requests = server
    path = f'{url}/evil.pth' if scheme == 'http' else \
        f'{scheme}://bucket/evil.pth'
    # Through mmengine's loader with our scheme, and our loader itself.
    with pytest.raises(ValueError, match=REMOTE) as e:
        CheckpointLoader.load_checkpoint(f'mmpromptkd://{path}',
                                         map_location='cpu')
    assert path in str(e.value)
    with pytest.raises(ValueError, match=REMOTE):
        load_checkpoint_file(path)
    assert requests == []


def test_teacher_checkpoint_url_is_refused(server):
    url, requests = server
    with pytest.raises(ValueError, match=REMOTE):
        build_clip(dict(openai_file=f'{url}/ViT-B-16.pt'))
    assert requests == []


def test_tools_refuse_urls(server, tmp_path, shapes_root):
    url, requests = server
    data = [f'{s}_dataloader.dataset.data_root={shapes_root}'
            for s in ('train', 'val', 'test')]
    weights = ['model.student.clip.checkpoint=None',
               'model.teacher.clip.checkpoint=None']
    train, test = load_tool('train.py').main, load_tool('test.py').main
    runs = {
        'test': (test, [str(CONFIG), f'{url}/a.pth', '--cfg-options', *data,
                        *weights]),
        'resume': (train, [str(CONFIG), '--work-dir', str(tmp_path / 'w1'),
                           '--resume', f'{url}/a.pth', '--cfg-options',
                           *data, *weights]),
        'load_from': (train, [str(CONFIG), '--work-dir',
                              str(tmp_path / 'w2'), '--cfg-options',
                              f'load_from={url}/a.pth', *data, *weights]),
        'teacher': (train, [str(CONFIG), '--work-dir', str(tmp_path / 'w3'),
                            '--cfg-options',
                            f'model.teacher.checkpoint={url}/a.pth', *data,
                            'model.student.clip.checkpoint=None']),
    }
    for name, (main, args) in runs.items():
        with pytest.raises(ValueError, match=REMOTE):
            main(args)
    assert requests == []


# --------------------------------------------------------------------- #
# TorchScript archives.
def _pickle_ops(*ops: bytes) -> bytes:
    return b'\x80\x02' + b''.join(ops) + b'.'


def _global(module: str, name: str) -> bytes:
    return b'c' + module.encode() + b'\n' + name.encode() + b'\n'


def _str(text: str) -> bytes:
    data = text.encode()
    return b'X' + len(data).to_bytes(4, 'little') + data


def _archive(path: Path, data_pkl: bytes) -> Path:
    scripted = torch.jit.script(torch.nn.Linear(2, 2))
    scripted.save(str(path.with_suffix('.orig')))
    with zipfile.ZipFile(path.with_suffix('.orig')) as src, \
            zipfile.ZipFile(path, 'w') as dst:
        for item in src.namelist():
            data = src.read(item)
            if item.endswith('/data.pkl'):
                data = data_pkl
            dst.writestr(item, data)
    return path


# (None, {MARKER_ATTR: 1}): BUILD's "slot state", which it sets with
# setattr, on classes too.
_STATE = b'N}(' + _str(MARKER_ATTR) + b'K\x01u\x86'
_MODULE = _global('__torch__.m', 'M') + b')\x81'
TORCHSCRIPT_PAYLOADS = {
    # BUILD sets attributes on a class object of torch.
    'build-on-storage-class': _pickle_ops(
        _global('torch', 'UntypedStorage'), _STATE, b'b'),
    'build-on-typed-storage-class': _pickle_ops(
        _global('torch', 'FloatStorage'), _STATE, b'b'),
    'build-on-rebuild-function': _pickle_ops(
        _global('torch._utils', '_rebuild_tensor_v2'), _STATE, b'b'),
    'build-on-module-class': _pickle_ops(
        _global('__torch__.m', 'M'), _STATE, b'b'),
    # A module object given its state twice.
    'second-build': _pickle_ops(_MODULE, b'}b', _STATE, b'b'),
    # Calls of classes: a storage of 10^12 bytes, an OrderedDict with items.
    'reduce-storage-class': _pickle_ops(
        _global('torch', 'UntypedStorage'), b'J\x00\x10\xa5\xd4\x85', b'R'),
    'reduce-ordered-dict-with-items': _pickle_ops(
        _global('collections', 'OrderedDict'), b']\x85R'),
    'newobj-storage-class': _pickle_ops(
        _global('torch', 'FloatStorage'), b')\x81'),
    # A tensor rebuilt from something that is not one of its storages.
    'rebuild-from-foreign-storage': _pickle_ops(
        _global('torch._utils', '_rebuild_tensor_v2'), b'(',
        _global('torch', 'FloatStorage'), b'K\x00)', b')\x89',
        _global('collections', 'OrderedDict'), b')Rt', b'R'),
    # Item writes on things that are not plain dicts and lists.
    'setitems-on-class': _pickle_ops(
        _global('torch', 'UntypedStorage'), b'(', _str(MARKER_ATTR),
        b'K\x01u'),
    'appends-on-module': _pickle_ops(_MODULE, b'(K\x01e'),
    # Opcodes weight archives never use.
    'inst-opcode': b'\x80\x02(ios\nsystem\n' + _str('true') + b'.',
    'stack-global': b'\x80\x04' + b'\x8c\x05torch\x8c\x0eUntypedStorage'
    b'\x93' + _STATE + b'b.',
}


@pytest.mark.parametrize('name', sorted(TORCHSCRIPT_PAYLOADS))
def test_torchscript_reader_refuses_mutations(name, tmp_path):
    path = _archive(tmp_path / 'ViT-B-16.pt', TORCHSCRIPT_PAYLOADS[name])
    targets = (torch.UntypedStorage, torch.FloatStorage,
               torch._utils._rebuild_tensor_v2)
    with pytest.raises(pickle.UnpicklingError) as e:
        read_torchscript_state_dict(str(path))
    assert str(path) in str(e.value)
    assert not any(hasattr(t, MARKER_ATTR) for t in targets)


def test_torchscript_payload_is_live(tmp_path):
    """The BUILD payload changes the class under a plain unpickler."""
    import io

    class Plain(pickle.Unpickler):

        def persistent_load(self, pid):
            raise AssertionError

    Plain(io.BytesIO(TORCHSCRIPT_PAYLOADS['build-on-storage-class'])).load()
    assert getattr(torch.UntypedStorage, MARKER_ATTR) == 1
    delattr(torch.UntypedStorage, MARKER_ATTR)


def test_torchscript_reader_reads_real_archives(tmp_path):
    """Module trees with parameters, buffers and nested modules still load."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4),
                                torch.nn.Sequential(torch.nn.Linear(4, 2)))
    torch.jit.script(model).save(str(tmp_path / 'm.pt'))
    state = read_torchscript_state_dict(str(tmp_path / 'm.pt'))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0)
