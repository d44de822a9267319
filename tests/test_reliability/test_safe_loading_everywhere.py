"""Every way a checkpoint enters the program refuses to run code in it.

A crafted file whose unpickling would call ``os.system('touch MARKER')`` is
given to each entry point: ``--resume``, ``load_from``, ``tools/test.py``,
teacher checkpoints, CLIP weight files (pickle and TorchScript), the
converter of official checkpoints, the student exporter and
``load_exported_student``. Each must fail with an error that names the file
and the refused object, and MARKER must never appear.

The paths that go through mmengine's checkpoint loader are also run with
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, which makes a bare ``torch.load``
unpickle anything. The command-line tools run in this process (their
``main``); a subprocess would only add the start-up time.
"""
import io
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import _load_checkpoint

from mmpromptkd.apis import load_exported_student
from mmpromptkd.models.clip.clip_builder import build_clip
from mmpromptkd.registry import MODELS
from mmpromptkd.utils import load_checkpoint_file
from reliability_utils import CONFIG, RANDOM_WEIGHTS
from tool_scripts import load_tool

REFUSED = r'refused to load.*posix\.system|posix\.system.*refus'
ENVIRONMENTS = {
    'default': {},
    'force-no-weights-only': {'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD': '1'},
}
TINY = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2,
                    head_width=32),
    text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2,
                  layers=2))


class _RunsCode:
    """Unpickling this object runs a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / 'MARKER'
    yield path
    assert not path.exists(), 'code stored in a checkpoint was executed'


@pytest.fixture
def evil(tmp_path, marker) -> Path:
    """An mmengine-style checkpoint with a code-running object inside."""
    path = tmp_path / 'evil.pth'
    torch.save(
        dict(
            meta=dict(epoch=1, iter=6, seed=0),
            state_dict={'projector.weight': torch.zeros(2, 2)},
            message_hub=_RunsCode(marker)), path)
    return path


@pytest.fixture
def evil_torchscript(tmp_path, marker) -> Path:
    """A zip laid out as a TorchScript archive whose data.pkl runs code."""
    path = tmp_path / 'ViT-B-16.pt'
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('ViT-B-16/data.pkl',
                         pickle.dumps(_RunsCode(marker), protocol=2))
        archive.writestr('ViT-B-16/code/__torch__/model.py', 'pass\n')
        archive.writestr('ViT-B-16/constants.pkl', pickle.dumps(()))
    return path


@pytest.fixture(params=sorted(ENVIRONMENTS))
def environment(request, monkeypatch):
    for name, value in ENVIRONMENTS[request.param].items():
        monkeypatch.setenv(name, value)
    return request.param


@pytest.fixture
def unsafe_default(monkeypatch):
    """The environment in which a bare ``torch.load`` runs code.

    The command-line entry points are tested in it only: they all read
    files through mmengine's loader, which :func:`test_mmengine_loader`
    checks in both environments.
    """
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')


def _data_options(root: Path):
    return RANDOM_WEIGHTS + [
        f'{split}_dataloader.dataset.data_root={root}'
        for split in ('train', 'val', 'test')
    ]


def _refused(excinfo, path: Path) -> None:
    message = str(excinfo.value)
    assert str(path) in message
    assert 'refused to load' in message and 'posix.system' in message


class TestMMEngineEntryPoints:
    """--resume, load_from and tools/test.py go through mmengine."""

    def test_mmengine_loader(self, evil, environment):
        # mmengine's loader with our scheme, as in get_model(pretrained=...).
        with pytest.raises(pickle.UnpicklingError) as e:
            _load_checkpoint(f'mmpromptkd://{evil}', map_location='cpu')
        _refused(e, evil)
        # Our own loader passes weights_only explicitly anyway.
        with pytest.raises(pickle.UnpicklingError) as e:
            load_checkpoint_file(str(evil))
        _refused(e, evil)

    @pytest.mark.slow
    def test_stored_config_is_not_executed(self, tmp_path, shapes_root,
                                           marker):
        """Resuming parses meta['config']; that text must never run."""
        train = load_tool('train.py')
        work_dir = tmp_path / 'work_dir'
        small = ['train_dataloader.batch_size=8']
        train.main([str(CONFIG), '--work-dir', str(work_dir), '--cfg-options',
                    'train_cfg.max_epochs=1', *small,
                    *_data_options(shapes_root)])
        path = work_dir / 'epoch_1.pth'
        checkpoint = load_checkpoint_file(str(path))
        checkpoint['meta']['config'] = (
            f"x = __import__('os').system('touch {marker}')\n")
        torch.save(checkpoint, path)
        train.main([str(CONFIG), '--work-dir', str(work_dir), '--resume',
                    '--cfg-options', 'train_cfg.max_epochs=2', *small,
                    *_data_options(shapes_root)])
        assert (work_dir / 'epoch_2.pth').is_file()

    def test_stored_config_payload_is_live(self, tmp_path):
        """mmengine's Config.fromstring, as its Runner.resume calls it,
        executes the stored text: the guard above is needed."""
        probe = tmp_path / 'PROBE'
        Config.fromstring(
            f"x = __import__('os').system('touch {probe}')\n",
            file_format='.py')
        assert probe.exists()

    def test_resume(self, evil, unsafe_default, shapes_root, tmp_path):
        train = load_tool('train.py')
        with pytest.raises(pickle.UnpicklingError) as e:
            train.main([
                str(CONFIG), '--work-dir',
                str(tmp_path / 'work_dir'), '--resume',
                str(evil), '--cfg-options', *_data_options(shapes_root)
            ])
        _refused(e, evil)
        assert not list((tmp_path / 'work_dir').glob('*.pth'))

    def test_load_from(self, evil, unsafe_default, shapes_root, tmp_path):
        train = load_tool('train.py')
        with pytest.raises(pickle.UnpicklingError) as e:
            train.main([
                str(CONFIG), '--work-dir',
                str(tmp_path / 'work_dir'), '--cfg-options',
                f'load_from={evil}', *_data_options(shapes_root)
            ])
        _refused(e, evil)
        assert not list((tmp_path / 'work_dir').glob('*.pth'))

    def test_test_tool(self, evil, unsafe_default, shapes_root, tmp_path):
        test = load_tool('test.py')
        out = tmp_path / 'metrics.json'
        with pytest.raises(pickle.UnpicklingError) as e:
            test.main([
                str(CONFIG),
                str(evil), '--work-dir',
                str(tmp_path / 'test'), '--out',
                str(out), '--cfg-options', *_data_options(shapes_root)
            ])
        _refused(e, evil)
        assert not out.exists()


class TestModelEntryPoints:
    """Teacher checkpoints and CLIP weight files."""

    def test_teacher_checkpoint(self, evil):
        with pytest.raises(pickle.UnpicklingError) as e:
            MODELS.build(
                dict(
                    type='PromptedCLIP',
                    clip=dict(model_cfg=TINY, quick_gelu=True),
                    vision_prompt_depth=1,
                    text_prompt_depth=1,
                    checkpoint=str(evil)))
        _refused(e, evil)

    @pytest.mark.parametrize('cfg_type', ['PromptedCLIP',
                                          'PromptSRCClassifier'])
    def test_load_prompt_checkpoint(self, evil, cfg_type):
        model = MODELS.build(
            dict(
                type=cfg_type,
                clip=dict(model_cfg=TINY, quick_gelu=True),
                vision_prompt_depth=1,
                text_prompt_depth=1))
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with pytest.raises(pickle.UnpicklingError) as e:
            model.load_prompt_checkpoint(str(evil))
        _refused(e, evil)
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)

    def test_clip_weight_files(self, evil, evil_torchscript):
        with pytest.raises(pickle.UnpicklingError) as e:
            build_clip(dict(model_cfg=TINY, checkpoint=str(evil)))
        _refused(e, evil)
        with pytest.raises(pickle.UnpicklingError) as e:
            build_clip(dict(openai_file=str(evil)))
        _refused(e, evil)
        # The TorchScript reader allows tensor types only.
        with pytest.raises(pickle.UnpicklingError) as e:
            build_clip(dict(openai_file=str(evil_torchscript)))
        assert str(evil_torchscript) in str(e.value)
        assert 'posix.system' in str(e.value)


class TestConversionEntryPoints:
    """The model converters and the exported-student loader."""

    def test_official_converter(self, evil, evil_torchscript, tmp_path):
        convert = load_tool('model_converters/'
                            'promptkd_official_to_mmpromptkd.py')
        out = tmp_path / 'converted.pth'
        with pytest.raises(pickle.UnpicklingError) as e:
            convert.main(['student', str(evil), str(out)])
        _refused(e, evil)
        harmless = tmp_path / 'official.pth.tar'
        torch.save({'state_dict': {}}, harmless)
        for clip_file in (evil, evil_torchscript):
            with pytest.raises(pickle.UnpicklingError) as e:
                convert.main([
                    'teacher',
                    str(harmless),
                    str(out), '--openai-clip',
                    str(clip_file)
                ])
            assert str(clip_file) in str(e.value)
            assert 'posix.system' in str(e.value)
        assert not out.exists()

    def test_export_student_tool(self, evil, tmp_path):
        export = load_tool('model_converters/export_student.py')
        out = tmp_path / 'student.pth'
        with pytest.raises(pickle.UnpicklingError) as e:
            export.main([str(CONFIG), str(evil), str(out), '--cfg-options',
                         *RANDOM_WEIGHTS])
        _refused(e, evil)
        assert not out.exists()

    def test_load_exported_student(self, evil):
        with pytest.raises(pickle.UnpicklingError) as e:
            load_exported_student(str(evil))
        _refused(e, evil)


class TestStrictLoading:
    """Weights that do not fit the model are an error naming the keys."""

    def test_test_tool_refuses_missing_student_weights(
            self, shapes_root, tmp_path):
        cfg = Config.fromfile(str(CONFIG))
        cfg.model.student.clip.checkpoint = None
        cfg.model.teacher.clip.checkpoint = None
        model = MODELS.build(cfg.model)
        trained = set(model.trainable_parameters())
        state = {
            k: v
            for k, v in model.state_dict().items() if k not in trained
        }
        path = tmp_path / 'no_student_prompts.pth'
        torch.save(dict(meta=dict(), state_dict=state), path)
        test = load_tool('test.py')
        with pytest.raises((ValueError, RuntimeError),
                           match='projector.fc1.weight'):
            test.main([
                str(CONFIG),
                str(path), '--work-dir',
                str(tmp_path / 'test'), '--cfg-options',
                *_data_options(shapes_root)
            ])


def test_pickled_in_memory_too(marker):
    """The crafted object really runs code when unpickled unsafely.

    Guards the other tests against a payload that would be harmless anyway:
    the object is unpickled here with plain ``pickle`` (no file), into a
    fresh marker path that is checked and removed.
    """
    probe = marker.with_name('PROBE')
    pickle.loads(pickle.dumps(_RunsCode(probe)))
    assert probe.exists()
    probe.unlink()
    # A torch checkpoint of it loads unsafely only on explicit request.
    buffer = io.BytesIO()
    torch.save({'x': _RunsCode(probe)}, buffer)
    buffer.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(buffer, weights_only=True)
    assert not probe.exists()
