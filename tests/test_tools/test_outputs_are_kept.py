"""No user file is overwritten: configs, models, images, earlier results."""
import pytest

from tool_runs import CONFIG, REPO, call_tool

TRAIN, TEST = REPO / 'tools' / 'train.py', REPO / 'tools' / 'test.py'
INFER = REPO / 'tools' / 'infer.py'


@pytest.fixture
def own_config(tmp_path):
    """A user's config in its own folder (based on a shipped one)."""
    folder = tmp_path / 'my_configs'
    folder.mkdir()
    config = folder / 'mine.py'
    config.write_text(f'_base_ = [{str(CONFIG)!r}]\n'
                      'train_cfg = dict(max_epochs=1)\n')
    return config


@pytest.mark.parametrize('tool', [TRAIN, TEST])
def test_the_config_folder_is_no_work_dir(own_config, monkeypatch, tool):
    text = own_config.read_text()
    monkeypatch.chdir(own_config.parent)
    for work_dir in (str(own_config.parent), '.'):
        result = call_tool(tool, [own_config, '--work-dir', work_dir])
        assert result.returncode == 1
        last = result.stdout.strip().splitlines()[-1]
        assert 'holds the config' in last and 'mine.py' in last
    assert own_config.read_text() == text


def test_infer_keeps_its_inputs_and_earlier_results(tmp_path):
    model, image = tmp_path / 'student.pth', tmp_path / 'a.png'
    earlier = tmp_path / 'out.json'
    for path in (model, image, earlier):
        path.write_bytes(b'mine')
    for out, force, match in ((model, True, 'is the input'),
                              (image, True, 'is the input'),
                              (earlier, False, 'exists')):
        args = [image, '--model', model, '--out', out]
        result = call_tool(INFER, args + (['--force'] if force else []))
        assert result.returncode == 2 and match in result.stdout
    assert all(p.read_bytes() == b'mine' for p in (model, image, earlier))


def test_test_keeps_earlier_results(tmp_path):
    earlier = tmp_path / 'results.json'
    earlier.write_text('{"b2n/hm": 70.0}')
    result = call_tool(TEST, [CONFIG, '--out', earlier])
    assert result.returncode == 2 and '--force' in result.stdout
    assert earlier.read_text() == '{"b2n/hm": 70.0}'
