"""--cfg-options: values keep their spaces; mistyped keys are errors."""
import subprocess
import sys
from argparse import ArgumentParser
from pathlib import Path

import pytest
from mmengine.config import Config, DictAction

from run_cli import CfgOptionsAction, check_cfg_options

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs/promptkd' / \
    'promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py'


def _parse(*options):
    parser = ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return parser.parse_args(['--cfg-options', *options]).cfg_options


class TestValues:

    def test_spaces_are_kept(self):
        assert _parse('load_from=/path/student v2.pth') == {
            'load_from': '/path/student v2.pth'}

    @pytest.mark.parametrize('text,value', [
        ('2', 2), ('0.5', 0.5), ('true', True), ('None', None),
        ('[a, b c]', ['a', 'b c']), ('(1,2)', (1, 2)), ('a,b', ['a', 'b']),
        ('[(1, 2), [x, y]]', [(1, 2), ['x', 'y']]), ('[]', []),
        ('"a,b"', 'a,b'),
    ])
    def test_types_as_mmengine(self, text, value):
        assert _parse(f'k={text}') == {'k': value}

    @pytest.mark.parametrize('text', [
        '2', '-3', '1e-4', 'FALSE', 'None', 'none', 'a', '[a,b]', '(1,[2,x])',
        'a,b,c', '[]', '[(1,2),(3,4)]', "'quoted'", 'x=y'
    ])
    def test_same_as_mmengine_without_spaces(self, text):
        parser = ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        expected = parser.parse_args(['--o', f'k={text}']).o
        assert _parse(f'k={text}') == expected

    def test_options_accumulate(self):
        parser = ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+',
                            action=CfgOptionsAction)
        args = parser.parse_args(
            ['--cfg-options', 'a=1', '--cfg-options', 'b=x y'])
        assert args.cfg_options == {'a': 1, 'b': 'x y'}


class TestKeys:

    @pytest.fixture(scope='class')
    def cfg(self):
        return Config.fromfile(str(CONFIG))

    def test_new_top_level_field(self, cfg):
        with pytest.raises(ValueError,
                           match="no field 'randomnes'.*'randomness'"):
            check_cfg_options(cfg, {'randomnes.seed': 2})
        check_cfg_options(cfg, {'randomnes.seed': 2}, allow_new_keys=True)

    def test_argument_a_component_does_not_take(self, cfg):
        with pytest.raises(ValueError, match=r"SafeCheckpointHook \("
                           r"default_hooks.checkpoint\) takes no argument "
                           r"'max_keep_ckpt'.*'max_keep_ckpts'"):
            check_cfg_options(
                cfg, {'default_hooks.checkpoint.max_keep_ckpt': 1})
        with pytest.raises(ValueError, match='PromptKDDistiller.*projecter'):
            check_cfg_options(cfg, {'model.projecter.x': 1})

    def test_valid_keys(self, cfg):
        check_cfg_options(cfg, {
            'randomness.seed': 2,
            'default_hooks.checkpoint.max_keep_ckpts': 1,
            # Forwarded by CheckpointHook to Runner.save_checkpoint.
            'default_hooks.checkpoint.save_optimizer': False,
            'train_cfg.max_epochs': 1,
            # Plain dicts (no type) may get new keys.
            'env_cfg.dist_cfg.timeout': 15,
            'model.teacher.checkpoint': 'x.pth',
        })


@pytest.mark.slow
@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_tools_refuse_before_running(tool, tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools' / tool), str(CONFIG),
         '--work-dir', str(tmp_path / 'w'), '--cfg-options',
         'randomnes.seed=2'], capture_output=True, text=True, cwd=tmp_path,
        timeout=300)
    assert result.returncode != 0
    assert "Did you mean 'randomness'" in result.stderr
    assert not (tmp_path / 'w').exists() or not list(
        (tmp_path / 'w').glob('*/'))
