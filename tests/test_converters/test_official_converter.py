"""Round trip of fabricated official PromptSRC/PromptKD checkpoints."""
import os.path as osp

import open_clip
import pytest
import torch

import mmpromptkd  # noqa: F401
from mmpromptkd.registry import MODELS
from tool_scripts import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OPENAI_TINY = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=3),
    text_cfg=dict(
        context_length=77, vocab_size=49408, width=64, heads=1, layers=3))


def converter():
    return load_tool('model_converters/promptkd_official_to_mmpromptkd.py')


@pytest.fixture
def openai_file(tmp_path):
    model = open_clip.CLIP(**OPENAI_TINY, quick_gelu=True)
    state = {k: v.half() for k, v in model.state_dict().items()}
    path = tmp_path / 'ViT-T.pt'
    torch.save(state, path)
    return str(path)


def official_teacher_state(model, depth):
    """Lay out a PromptedCLIP in the reference's key names (by hand)."""
    clip = model.clip
    state = {'prompt_learner.ctx': model.text_ctx.data.half(),
             'image_encoder.VPT': model.vision_ctx.data.half(),
             'logit_scale': clip.logit_scale.data.half()}
    for i in range(1, depth):
        state[f'image_encoder.transformer.resblocks.{i}.VPT_shallow'] = \
            model.vision_deep_prompts[i - 1].data.half()
        state[f'text_encoder.transformer.resblocks.{i}.VPT_shallow'] = \
            model.text_deep_prompts[i - 1].data.half()
    for key, value in clip.visual.state_dict().items():
        state[f'image_encoder.{key}'] = value.half()
    for key, value in clip.transformer.state_dict().items():
        state[f'text_encoder.transformer.{key}'] = value.half()
    state['text_encoder.positional_embedding'] = \
        clip.positional_embedding.data.half()
    state['text_encoder.ln_final.weight'] = clip.ln_final.weight.data.half()
    state['text_encoder.ln_final.bias'] = clip.ln_final.bias.data.half()
    state['text_encoder.text_projection'] = clip.text_projection.data.half()
    # Keys the converter must ignore.
    state['prompt_learner.token_prefix'] = torch.zeros(5, 1, 64).half()
    state['prompt_learner.token_suffix'] = torch.zeros(5, 72, 64).half()
    state['prompt_learner.ZS_image_encoder.conv1.weight'] = torch.zeros(1)
    return state


def dassl(state):
    return {'state_dict': state, 'epoch': 20, 'optimizer': None,
            'scheduler': None, 'val_result': 81.2}


class TestTeacherConverter:

    def test_round_trip(self, tmp_path, openai_file, capsys):
        teacher_cfg = dict(
            type='PromptedCLIP', clip=dict(openai_file=openai_file),
            vision_prompt_depth=3, text_prompt_depth=3)
        original = MODELS.build(teacher_cfg)
        with torch.no_grad():
            for param in original.prompt_parameters().values():
                param.normal_()
        torch.save(dassl(official_teacher_state(original, 3)),
                   tmp_path / 'model-best.pth.tar')
        converter().main([
            'teacher', str(tmp_path / 'model-best.pth.tar'),
            str(tmp_path / 'teacher.pth'), '--openai-clip', openai_file
        ])
        printed = capsys.readouterr().out
        assert 'prompt_learner.ctx -> text_ctx' in printed
        assert ('image_encoder.transformer.resblocks.2.VPT_shallow -> '
                'vision_deep_prompts.1') in printed
        assert 'token_prefix' not in printed

        converted = torch.load(tmp_path / 'teacher.pth')
        assert converted['meta']['vision_prompt_depth'] == 3
        assert converted['meta']['text_prompt_depth'] == 3
        loaded = MODELS.build(
            dict(teacher_cfg, checkpoint=str(tmp_path / 'teacher.pth')))
        names = ['cat', 'dog']
        images = torch.randn(2, 3, 32, 32)
        # Prompts were stored in fp16, as the official files are.
        with torch.no_grad():
            for param in original.prompt_parameters().values():
                param.copy_(param.half().float())
        torch.testing.assert_close(
            loaded(images, names), original(images, names))

    def test_refuses_unknown_keys(self, tmp_path, openai_file):
        original = MODELS.build(
            dict(type='PromptedCLIP', clip=dict(openai_file=openai_file),
                 vision_prompt_depth=2, text_prompt_depth=2))
        state = official_teacher_state(original, 2)
        state['prompt_learner.meta_net.weight'] = torch.zeros(1)
        torch.save(dassl(state), tmp_path / 'bad.pth.tar')
        with pytest.raises(ValueError, match='prompt_learner.meta_net'):
            converter().main(['teacher', str(tmp_path / 'bad.pth.tar'),
                              str(tmp_path / 'out.pth'), '--openai-clip',
                              openai_file])
        assert not (tmp_path / 'out.pth').exists()

    def test_wrong_kind_and_gaps(self, tmp_path, openai_file):
        original = MODELS.build(
            dict(type='PromptedCLIP', clip=dict(openai_file=openai_file),
                 vision_prompt_depth=3, text_prompt_depth=3))
        state = official_teacher_state(original, 3)
        del state['image_encoder.transformer.resblocks.1.VPT_shallow']
        torch.save(dassl(state), tmp_path / 'gap.pth.tar')
        with pytest.raises(ValueError, match='without gaps'):
            converter().main(['teacher', str(tmp_path / 'gap.pth.tar'),
                              str(tmp_path / 'o.pth'), '--openai-clip',
                              openai_file])
        torch.save(dassl(state), tmp_path / 't.pth.tar')
        with pytest.raises(ValueError, match='teacher checkpoint'):
            converter().main(['student', str(tmp_path / 't.pth.tar'),
                              str(tmp_path / 'o.pth')])

    def test_depth_mismatch_is_reported(self, tmp_path, openai_file,
                                        capsys):
        original = MODELS.build(
            dict(type='PromptedCLIP', clip=dict(openai_file=openai_file),
                 vision_prompt_depth=2, text_prompt_depth=2))
        torch.save(dassl(official_teacher_state(original, 2)),
                   tmp_path / 'm.pth.tar')
        converter().main(['teacher', str(tmp_path / 'm.pth.tar'),
                          str(tmp_path / 't.pth'), '--openai-clip',
                          openai_file, '--quiet'])
        assert ('prompt depths found: vision 2, text 2; the teacher config '
                'needs model.teacher.vision_prompt_depth=2 '
                'model.teacher.text_prompt_depth=2') in capsys.readouterr().out
        with pytest.raises(ValueError, match='missing prompt keys') as e:
            MODELS.build(
                dict(type='PromptedCLIP', clip=dict(openai_file=openai_file),
                     vision_prompt_depth=3, text_prompt_depth=3,
                     checkpoint=str(tmp_path / 't.pth')))
        assert ('The checkpoint has prompts of vision depth 2 and text depth '
                '2: set vision_prompt_depth=2 and text_prompt_depth=2') in str(
                    e.value)
        # Deeper in the file than in the config: unexpected keys, same hint.
        with pytest.raises(ValueError, match='unexpected keys') as e:
            MODELS.build(
                dict(type='PromptedCLIP', clip=dict(openai_file=openai_file),
                     vision_prompt_depth=1, text_prompt_depth=1,
                     checkpoint=str(tmp_path / 't.pth')))
        assert 'set vision_prompt_depth=2 and text_prompt_depth=2' in str(
            e.value)

    def test_never_overwrites(self, tmp_path, openai_file):
        (tmp_path / 'exists.pth').write_text('keep')
        with pytest.raises(SystemExit):
            converter().main(['teacher', 'x', str(tmp_path / 'exists.pth'),
                              '--openai-clip', openai_file])
        assert (tmp_path / 'exists.pth').read_text() == 'keep'
