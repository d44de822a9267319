"""Each model gets images normalised as its weights were trained."""
import open_clip
import pytest
import torch
import torch.nn.functional as F

import mmpromptkd  # noqa: F401
from mmpromptkd.models.clip.clip_builder import pretrained_normalization
from mmpromptkd.models.utils import check_input_normalization
from mmpromptkd.registry import MODELS

# CLIP's published preprocessing constants, written out (not imported).
OPENAI = ((0.48145466, 0.4578275, 0.40821073),
          (0.26862954, 0.26130258, 0.27577711))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
CLASSES = ['red circle', 'blue square', 'green star']


@pytest.fixture
def openai_file(tmp_path, tiny_clip_cfg):
    """A tiny CLIP saved as an OpenAI file (which declares OpenAI's
    normalisation)."""
    model = open_clip.CLIP(**tiny_clip_cfg['model_cfg'], quick_gelu=True)
    path = tmp_path / 'ViT-T.pt'
    torch.save(model.state_dict(), path)
    return dict(openai_file=str(path))


def preprocessor(mean, std):
    return dict(type='mmpromptkd.LabelFreeDataPreprocessor', mean=mean,
                std=std, to_rgb=False)


def distiller(student, teacher, **kwargs):
    """A distiller of two tiny prompted CLIPs."""
    return MODELS.build(
        dict(type='PromptKDDistiller', allow_untrained_teacher=True,
             student=dict(clip=student, vision_prompt_depth=1),
             teacher=dict(clip=teacher, vision_prompt_depth=1,
                          text_prompt_depth=1), **kwargs))


def scaled(normalization):
    return [[255 * v for v in values] for values in normalization]


def test_each_source_declares_its_normalization():
    assert pretrained_normalization(dict(openai_file='ViT-B-16.pt')) == OPENAI
    assert pretrained_normalization(
        dict(model_name='MobileCLIP2-S2', pretrained='dfndr2b')) == \
        ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    for name, tag in (('ViT-B-16-SigLIP2', 'webli'), ('PE-Core-B-16',
                                                      'meta')):
        assert pretrained_normalization(
            dict(model_name=name, pretrained=tag)) == HALF
    assert pretrained_normalization(
        dict(model_name='EVA02-L-14', pretrained='merged2b_s4b_b131k')) == \
        OPENAI
    # Weights of one's own or random ones: nothing is known.
    assert pretrained_normalization(
        dict(model_name='ViT-B-16', checkpoint='x.pth')) is None
    assert pretrained_normalization(dict(model_cfg={})) is None


def test_check_names_both_normalizations_and_the_setting():
    mean, std = scaled(HALF)
    check_input_normalization(HALF, mean, std, 'model.x', 'setting')
    check_input_normalization(HALF, [127.53] * 3, std, 'model.x', 'setting')
    check_input_normalization(None, [0] * 3, [1] * 3, 'model.x', 'setting')
    openai_mean, openai_std = scaled(OPENAI)
    with pytest.raises(ValueError) as error:
        check_input_normalization(HALF, openai_mean, openai_std, 'model.x',
                                  'model.data_preprocessor')
    message = str(error.value)
    assert message.startswith('model.x: its weights were trained on images '
                              'normalised with mean=[127.5, 127.5, 127.5]')
    assert 'it would get mean=[122.7709' in message
    assert message.endswith('set model.data_preprocessor=dict(mean=[127.5, '
                            '127.5, 127.5], std=[127.5, 127.5, 127.5])')


def test_teacher_gets_its_own_normalization(tiny_clip_cfg,
                                            tiny_large_clip_cfg):
    teacher_mean, teacher_std = [10.0, 20.0, 30.0], [50.0, 60.0, 70.0]
    model = distiller(
        tiny_clip_cfg, tiny_large_clip_cfg,
        data_preprocessor=preprocessor([0.0] * 3, [255.0] * 3),
        teacher_normalization=dict(mean=teacher_mean, std=teacher_std))
    pixels = torch.rand(2, 3, 32, 32) * 255
    inputs = model.data_preprocessor(dict(inputs=pixels), False)['inputs']
    torch.testing.assert_close(inputs, pixels / 255)
    own = (pixels - torch.tensor(teacher_mean).view(1, 3, 1, 1)) / \
        torch.tensor(teacher_std).view(1, 3, 1, 1)
    torch.testing.assert_close(
        model.teacher_features(inputs),
        F.normalize(model.teacher.encode_image(own), dim=-1),
        atol=1e-5, rtol=1e-5)

    same = distiller(tiny_clip_cfg, tiny_large_clip_cfg)
    assert same._teacher_input_map is None
    torch.testing.assert_close(
        same.teacher_features(pixels),
        F.normalize(same.teacher.encode_image(pixels), dim=-1))


def test_models_refuse_images_their_weights_did_not_see(
        openai_file, tiny_clip_cfg):
    half = preprocessor(*scaled(HALF))
    with pytest.raises(ValueError,
                       match=r'^model.clip: .* set model.data_preprocessor'):
        MODELS.build(
            dict(type='IVLPClassifier', clip=openai_file,
                 vision_prompt_depth=1, text_prompt_depth=1,
                 data_preprocessor=half))
    MODELS.build(dict(type='IVLPClassifier', clip=openai_file,
                      vision_prompt_depth=1, text_prompt_depth=1))

    with pytest.raises(ValueError, match=r'^model.student: .* set '
                       r'model.data_preprocessor'):
        distiller(openai_file, tiny_clip_cfg, data_preprocessor=half)
    with pytest.raises(ValueError, match=r'^model.teacher: .* set '
                       r'model.teacher_normalization'):
        distiller(tiny_clip_cfg, openai_file,
                  teacher_normalization=dict(zip(('mean', 'std'),
                                                 scaled(HALF))))
    # The teacher's own normalisation given, the student's preprocessor
    # another: both fit.
    model = distiller(
        tiny_clip_cfg, openai_file, data_preprocessor=half,
        teacher_normalization=dict(zip(('mean', 'std'), scaled(OPENAI))))
    assert model._teacher_input_map is not None
    for bad in (dict(mean=[0.0] * 3), dict(mean=[0.0] * 2, std=[1.0] * 2),
                dict(mean=[0.0] * 3, std=[1.0, 0.0, 1.0])):
        with pytest.raises(ValueError, match='teacher_normalization'):
            distiller(tiny_clip_cfg, tiny_clip_cfg, teacher_normalization=bad)
