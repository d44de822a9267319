"""Stage (a) end to end, and the hand-off of its checkpoint to stage (b).

A tiny PromptSRC teacher is trained with ``tools/train.py`` on a generated
synthetic-shapes dataset, tested with ``tools/test.py`` (base / novel / HM),
and its checkpoint is given to a PromptKD distiller by one config key.
"""
import json
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

import mmpromptkd  # noqa: F401
from synthetic_shapes import generate_coop_dataset
from mmpromptkd.models.clip import build_clip
from mmpromptkd.registry import DATASETS, MODELS
from mmpromptkd.utils import load_checkpoint_file
from tool_scripts import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEACHER_CFG = osp.join(
    ROOT, 'configs/promptsrc',
    'promptsrc_tiny-clip_1xb32-16shot-5e_b2n-synthetic-shapes.py')
DISTILLER_CFG = osp.join(
    ROOT, 'configs/promptkd',
    'promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py')
GPA_KEY = 'gaussian_prompt_aggregation'


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    """Tiny models: with the few cores shared, more threads only contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def save_classifier(model, path):
    """The checkpoint layout a Runner writes (meta + state_dict)."""
    torch.save(dict(meta=dict(epoch=1), state_dict=model.state_dict()), path)


@pytest.fixture(scope='module')
def stage_a(tmp_path_factory):
    """Train the tiny PromptSRC teacher through tools/train.py."""
    if not osp.isfile(osp.join(ROOT, 'tools', 'train.py')):
        pytest.skip('tools/train.py is not there')
    root = tmp_path_factory.mktemp('stage_a')
    data = str(root / 'shapes')
    generate_coop_dataset(
        data, num_classes=6, train_per_class=4, val_per_class=4,
        test_per_class=3, image_size=32)
    # The CLIP comes from a file, as a real OpenAI CLIP would: stage-(a)
    # checkpoints then hold the prompts only (save_clip_weights=False).
    clip_cfg = dict(
        model_cfg=Config.fromfile(TEACHER_CFG).model.clip.model_cfg.to_dict(),
        quick_gelu=True)
    clip_file = str(root / 'tiny_clip.pth')
    torch.save(build_clip(clip_cfg).state_dict(), clip_file)
    clip_cfg['checkpoint'] = clip_file
    options = [
        f'{split}_dataloader.dataset.data_root={data}'
        for split in ('train', 'val', 'test')
    ] + [
        'train_dataloader.dataset.num_shots=4',
        'train_dataloader.batch_size=4', f'model.clip.checkpoint={clip_file}',
        'model.save_clip_weights=False', 'randomness.seed=0'
    ]
    work_dir = str(root / 'work')
    load_tool('train.py').main(
        [TEACHER_CFG, '--work-dir', work_dir, '--cfg-options'] + options)
    cfg = Config.fromfile(TEACHER_CFG)
    cfg.merge_from_dict(dict(model=dict(clip=clip_cfg,
                                        save_clip_weights=False)))
    classes = DATASETS.build(
        dict(type='SyntheticShapes', data_root=data, split='test')
    ).metainfo['classes']
    return SimpleNamespace(
        data=data, clip_cfg=clip_cfg, options=options, work_dir=work_dir,
        checkpoint=osp.join(work_dir, 'epoch_5.pth'), model_cfg=cfg.model,
        classes=classes)


@pytest.mark.slow  # trains a stage-(a) teacher for the class
class TestStageA:

    def test_test_tool_reports_base_novel_hm(self, stage_a, tmp_path,
                                             capsys):
        out = str(tmp_path / 'metrics.json')
        load_tool('test.py').main([
            TEACHER_CFG, stage_a.checkpoint, '--work-dir',
            str(tmp_path / 'test'), '--out', out, '--cfg-options'
        ] + stage_a.options)
        with open(out) as f:
            metrics = json.load(f)
        base, novel = metrics['b2n/base'], metrics['b2n/novel']
        assert 0 <= base <= 100 and 0 <= novel <= 100
        if base + novel:
            assert metrics['b2n/hm'] == pytest.approx(
                2 * base * novel / (base + novel))
        table = capsys.readouterr().out
        assert 'HM' in table and 'SyntheticShapes' in table

    def test_checkpoint_holds_the_aggregated_prompts(self, stage_a):
        ckpt = load_checkpoint_file(stage_a.checkpoint)
        state = ckpt['state_dict']
        assert sorted(state) == [
            'prompted_clip.text_ctx', 'prompted_clip.text_deep_prompts.0',
            'prompted_clip.text_deep_prompts.1', 'prompted_clip.vision_ctx',
            'prompted_clip.vision_deep_prompts.0',
            'prompted_clip.vision_deep_prompts.1'
        ]
        gpa = ckpt[GPA_KEY]
        assert gpa['epochs'] == [1, 2, 3, 4, 5]
        for name, value in gpa['aggregate'].items():
            torch.testing.assert_close(state[name], value)
        assert ckpt['meta']['dataset_meta']['subset'] == 'base'

    def test_zero_shot_teacher_with_an_empty_checkpoint(
            self, stage_a, tmp_path):
        """What configs/zsclip/README.md tells users to run."""
        config = tmp_path / 'zsclip_tiny.py'
        config.write_text(
            f"_base_ = ['{ROOT}/configs/zsclip/zsclip_vit-l14_b2n-dtd.py']\n"
            f'model = dict(clip=dict(_delete_=True, '
            f'**{stage_a.clip_cfg!r}))\n'
            f"test_dataloader = dict(num_workers=0, dataset=dict("
            f"type='SyntheticShapes', "
            f"data_root='{stage_a.data}', pipeline=["
            "dict(type='LoadImageFromFile'), dict(type='PackInputs')]))\n")
        out = str(tmp_path / 'metrics.json')
        # No checkpoint: the zero-shot model is complete as built.
        load_tool('test.py').main([
            str(config), '--work-dir',
            str(tmp_path / 'w'), '--out', out
        ])
        with open(out) as f:
            assert {'b2n/base', 'b2n/novel', 'b2n/hm'} <= set(json.load(f))

    def test_training_on_all_classes_is_refused(self, stage_a, tmp_path):
        options = stage_a.options + ['train_dataloader.dataset.subset=all']
        with pytest.raises(ValueError, match="is the 'all' subset"):
            load_tool('train.py').main([
                TEACHER_CFG, '--work-dir',
                str(tmp_path / 'w'), '--cfg-options'
            ] + options)
        assert not osp.exists(osp.join(tmp_path, 'w', 'epoch_1.pth'))


@pytest.mark.slow  # trains a stage-(a) teacher for the class
class TestHandOff:

    def trained_teacher(self, stage_a):
        """The stage-(a) model as the Runner restores it."""
        model = MODELS.build(stage_a.model_cfg)
        # The package's safe loader, through mmengine's scheme registry.
        load_checkpoint(model, f'mmpromptkd://{stage_a.checkpoint}',
                        strict=True)
        return model.eval()

    def test_distiller_config_takes_the_checkpoint(self, stage_a):
        cfg = Config.fromfile(DISTILLER_CFG)
        # The one key of the hand-off (plus, for this test only, the CLIP
        # file both stages read).
        cfg.merge_from_dict({
            'model.teacher.checkpoint': stage_a.checkpoint,
            'model.teacher.clip.checkpoint': stage_a.clip_cfg['checkpoint']
        })
        assert cfg.model.teacher.type == 'PromptedCLIP'
        distiller = MODELS.build(cfg.model)
        distiller.prepare_text_features(stage_a.classes, for_training=True)

        teacher = self.trained_teacher(stage_a)
        with torch.no_grad():
            expected = teacher.encode_text(stage_a.classes, normalize=True)
            torch.testing.assert_close(
                distiller.text_features, expected, atol=1e-6, rtol=0)
            images = torch.randn(3, 3, 32, 32)
            torch.testing.assert_close(
                distiller.teacher_logits(images, distiller.text_features),
                teacher.logits(images, expected),
                atol=1e-5,
                rtol=0)

    def test_classifier_as_teacher(self, stage_a, tiny_clip_cfg):
        teacher = self.trained_teacher(stage_a)
        distiller = MODELS.build(
            dict(
                type='PromptKDDistiller',
                student=dict(clip=tiny_clip_cfg, vision_prompt_depth=1),
                teacher=dict(stage_a.model_cfg,
                             checkpoint=stage_a.checkpoint)))
        distiller.prepare_text_features(stage_a.classes, for_training=True)
        with torch.no_grad():
            expected = teacher.encode_text(stage_a.classes, normalize=True)
        torch.testing.assert_close(
            distiller.text_features, expected, atol=1e-6, rtol=0)
        assert not any(p.requires_grad
                       for p in distiller.teacher.parameters())


class TestCheckpointFormats:

    @pytest.fixture
    def clip_file(self, tmp_path, tiny_large_clip_cfg):
        path = str(tmp_path / 'clip.pth')
        torch.save(build_clip(tiny_large_clip_cfg).state_dict(), path)
        return dict(tiny_large_clip_cfg, checkpoint=path)

    @staticmethod
    def perturbed(cfg):
        model = MODELS.build(cfg)
        with torch.no_grad():
            for param in model.trainable_parameters().values():
                param.add_(torch.randn_like(param))
        return model.eval()

    def test_maple_teacher(self, clip_file, tiny_clip_cfg, tmp_path):
        maple_cfg = dict(type='MaPLeClassifier', clip=clip_file,
                         prompt_depth=3, prompt_length=2)
        maple = self.perturbed(maple_cfg)
        path = str(tmp_path / 'maple.pth')
        save_classifier(maple, path)
        distiller = MODELS.build(
            dict(type='PromptKDDistiller',
                 student=dict(clip=tiny_clip_cfg, vision_prompt_depth=1),
                 teacher=dict(maple_cfg, checkpoint=path)))
        names = ['red circle', 'blue_square', 'green star']
        distiller.prepare_text_features(names, for_training=True)
        images = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            text = maple.encode_text(names, normalize=True)
            torch.testing.assert_close(distiller.text_features, text,
                                       atol=1e-6, rtol=0)
            torch.testing.assert_close(
                distiller.teacher_logits(images, text),
                maple.logits(images, text), atol=1e-5, rtol=0)
        # A PromptedCLIP cannot stand for MaPLe: its vision prompts are
        # missing and the maps unexpected; the message says what to use.
        prompted = dict(type='PromptedCLIP', clip=clip_file,
                        vision_prompt_depth=3, vision_prompt_length=2,
                        text_prompt_depth=3, text_prompt_length=2,
                        checkpoint=path)
        with pytest.raises(ValueError, match=r'vision_ctx.*vision_prompt_maps'
                           r'.*MaPLeClassifier'):
            MODELS.build(prompted)

    def test_prompted_clip_stays_strict(self, clip_file, tmp_path):
        cfg = dict(type='PromptSRCClassifier', clip=clip_file,
                   vision_prompt_depth=2, text_prompt_depth=2)
        model = self.perturbed(cfg)
        path = str(tmp_path / 'promptsrc.pth')
        save_classifier(model, path)
        prompted = dict(type='PromptedCLIP', clip=clip_file,
                        vision_prompt_depth=2, text_prompt_depth=2)
        loaded = MODELS.build(dict(prompted, checkpoint=path))
        torch.testing.assert_close(loaded.text_deep_prompts[0],
                                   model.prompted_clip.text_deep_prompts[0])

        state = model.state_dict()
        cases = {
            r'missing prompt keys \[\'text_ctx\'\]': {
                k: v for k, v in state.items() if not k.endswith('text_ctx')
            },
            r"unexpected keys \['extra'\]": dict(
                state, **{'prompted_clip.extra': torch.zeros(1)}),
        }
        for message, bad in cases.items():
            bad_path = str(tmp_path / 'bad.pth')
            torch.save(dict(meta={}, state_dict=bad), bad_path)
            with pytest.raises(ValueError, match=message):
                MODELS.build(dict(prompted, checkpoint=bad_path))
        with pytest.raises(ValueError, match=r'shape mismatch \[.text_ctx'):
            MODELS.build(dict(prompted, text_prompt_length=3,
                              checkpoint=path))
        with pytest.raises(ValueError, match='missing prompt keys'):
            MODELS.build(dict(prompted, text_prompt_depth=3,
                              checkpoint=path))

    def test_clip_weights_travel_when_saved(self, tiny_large_clip_cfg,
                                            tmp_path):
        """The tiny demo keeps its random CLIP in the checkpoint."""
        cfg = dict(type='IVLPClassifier', clip=tiny_large_clip_cfg,
                   vision_prompt_depth=2, text_prompt_depth=2,
                   save_clip_weights=True)
        model = self.perturbed(cfg)
        path = str(tmp_path / 'with_clip.pth')
        save_classifier(model, path)
        torch.manual_seed(123)  # another random CLIP
        teacher = MODELS.build(dict(
            type='PromptedCLIP', clip=tiny_large_clip_cfg,
            vision_prompt_depth=2, text_prompt_depth=2, checkpoint=path))
        names = ['cat', 'dog']
        with torch.no_grad():
            torch.testing.assert_close(
                teacher.encode_text(names, normalize=True),
                model.encode_text(names, normalize=True))
        # And back into the classifier, prefix-free (PromptedCLIP format).
        plain = str(tmp_path / 'plain.pth')
        torch.save(teacher.state_dict(), plain)
        again = MODELS.build(dict(cfg, checkpoint=plain))
        torch.testing.assert_close(again.prompted_clip.vision_ctx,
                                   model.prompted_clip.vision_ctx)
