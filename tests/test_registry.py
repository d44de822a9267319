"""Registries: mmpretrain components by bare name, ours from mmpretrain."""
import torch
from mmpretrain.registry import DATASETS as MMPRETRAIN_DATASETS
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

import mmpromptkd
from mmpromptkd.registry import HOOKS, METRICS, MODELS


def test_scope_and_parent():
    assert MODELS.scope == 'mmpromptkd'
    assert MODELS.parent is MMPRETRAIN_MODELS
    assert mmpromptkd.__version__


def test_mmpretrain_component_by_bare_name():
    head = MODELS.build(
        dict(type='LinearClsHead', num_classes=3, in_channels=4))
    assert type(head).__module__.startswith('mmpretrain')
    out = head((torch.randn(2, 4), ))
    assert out.shape == (2, 3)
    backbone = MODELS.build(dict(type='ResNet', depth=18, out_indices=(0, )))
    backbone.eval()
    assert backbone(torch.randn(1, 3, 32, 32))[0].shape == (1, 64, 8, 8)


def test_ours_from_mmpretrain_scope(tiny_clip_cfg):
    model = MMPRETRAIN_MODELS.build(
        dict(type='mmpromptkd.PromptedCLIP', clip=tiny_clip_cfg,
             vision_prompt_depth=1))
    assert type(model).__name__ == 'PromptedCLIP'
    loss = MMPRETRAIN_MODELS.build(dict(type='mmpromptkd.KLLogitLoss'))
    assert type(loss).__module__.startswith('mmpromptkd')
    assert MMPRETRAIN_DATASETS.get('mmpromptkd.CoOpDTD').__name__ == 'CoOpDTD'


def test_every_component_registered():
    for name in ('PromptedCLIP', 'PromptKDDistiller', 'FeatureProjector',
                 'KLLogitLoss'):
        assert MODELS.get(name) is not None, name
    assert METRICS.get('BaseNovelAccuracy') is not None
    assert HOOKS.get('PromptKDTextFeaturesHook') is not None


def test_no_name_shadows_mmpretrain_or_mmengine():
    """A bare name means the same component in our scope and in theirs.

    Every registry of ours falls back on mmpretrain's and mmengine's; a name
    registered in both would silently give a config in the mmpretrain scope
    their component and one in ours ours (e.g. mmpretrain's ``DTD`` has
    other splits than CoOp's).
    """
    import mmpromptkd.registry as ours
    checked = 0
    for name in ours.__all__:
        registry = getattr(ours, name)
        for key in registry.module_dict:
            parent = registry.parent
            while parent is not None:
                assert key not in parent.module_dict, (
                    f'{name}: {key!r} is also registered in the '
                    f'{parent.scope} {parent.name} registry')
                parent = parent.parent
            checked += 1
    assert checked > 30
    assert MMPRETRAIN_DATASETS.get('DTD').__module__.startswith('mmpretrain')
    assert MODELS.get('CoOpDTD') is None  # datasets are not models
