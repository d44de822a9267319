"""Registries of mmpromptkd: children, in the ``mmpromptkd`` scope, of
mmpretrain's, so configs of either scope build components of both.

``RUNNERS`` is a child of mmengine's root registry instead: train scripts
build a config's ``runner_type`` from it, which finds
``'mmpromptkd.SafeLoadingRunner'`` only in a direct child.
"""
import warnings

from mmengine import registry as mmengine_registry
from mmengine.registry import Registry
from mmpretrain import registry as mmpretrain_registry
from mmpretrain.utils import register_all_modules

# A child registry falls back on its parent's entries, but only imports its
# own locations: register mmpretrain's components now so that our configs
# find them by bare name. mmcv-lite lacks compiled ops that no component
# here uses; silence the warning about them.
with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message='Fail to import')
    register_all_modules(init_default_scope=False)

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS',
    'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'PARAM_SCHEDULERS', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS',
    'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'BATCH_AUGMENTS', 'TASK_UTILS',
    'METRICS', 'EVALUATORS', 'VISUALIZERS', 'VISBACKENDS'
]


def _child(name: str, parent: Registry) -> Registry:
    """A child registry of ``parent`` in the ``mmpromptkd`` scope (the
    package, once imported, has registered every component)."""
    return Registry(
        name, parent=parent, scope='mmpromptkd', locations=['mmpromptkd'])


RUNNERS = _child('runner', mmengine_registry.RUNNERS)
RUNNER_CONSTRUCTORS = _child('runner constructor',
                             mmpretrain_registry.RUNNER_CONSTRUCTORS)
LOOPS = _child('loop', mmpretrain_registry.LOOPS)
HOOKS = _child('hook', mmpretrain_registry.HOOKS)
LOG_PROCESSORS = _child('log processor', mmpretrain_registry.LOG_PROCESSORS)
OPTIMIZERS = _child('optimizer', mmpretrain_registry.OPTIMIZERS)
OPTIM_WRAPPERS = _child('optim wrapper', mmpretrain_registry.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child(
    'optimizer wrapper constructor',
    mmpretrain_registry.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child('parameter scheduler',
                          mmpretrain_registry.PARAM_SCHEDULERS)
DATASETS = _child('dataset', mmpretrain_registry.DATASETS)
DATA_SAMPLERS = _child('data sampler', mmpretrain_registry.DATA_SAMPLERS)
TRANSFORMS = _child('transform', mmpretrain_registry.TRANSFORMS)
MODELS = _child('model', mmpretrain_registry.MODELS)
MODEL_WRAPPERS = _child('model wrapper', mmpretrain_registry.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child('weight initializer',
                             mmpretrain_registry.WEIGHT_INITIALIZERS)
BATCH_AUGMENTS = _child('batch augment', mmpretrain_registry.BATCH_AUGMENTS)
TASK_UTILS = _child('task util', mmpretrain_registry.TASK_UTILS)
METRICS = _child('metric', mmpretrain_registry.METRICS)
EVALUATORS = _child('evaluator', mmpretrain_registry.EVALUATORS)
VISUALIZERS = _child('visualizer', mmpretrain_registry.VISUALIZERS)
VISBACKENDS = _child('vis_backend', mmpretrain_registry.VISBACKENDS)
