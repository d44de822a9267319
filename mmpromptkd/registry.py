"""Registries of mmpromptkd: children of mmpretrain's, so configs of either
scope build components of both; ``RUNNERS`` of mmengine's root, where train
scripts find ``'mmpromptkd.SafeLoadingRunner'`` only in a direct child."""
import warnings

from mmengine import registry as mmengine_registry
from mmengine.registry import Registry
from mmpretrain import registry as parents
from mmpretrain.utils import register_all_modules

# A child registry falls back on its parent's entries, but only imports its
# own locations: register mmpretrain's components now so that our configs
# find them by bare name. mmcv-lite lacks compiled ops that no component
# here uses; silence the warning about them.
with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message='Fail to import')
    register_all_modules(init_default_scope=False)


def _child(name: str, parent: Registry) -> Registry:
    """A child registry of ``parent`` in the ``mmpromptkd`` scope (the
    package, once imported, has registered every component)."""
    return Registry(
        name, parent=parent, scope='mmpromptkd', locations=['mmpromptkd'])


RUNNERS = _child('runner', mmengine_registry.RUNNERS)
RUNNER_CONSTRUCTORS = _child('runner constructor', parents.RUNNER_CONSTRUCTORS)
LOOPS = _child('loop', parents.LOOPS)
HOOKS = _child('hook', parents.HOOKS)
LOG_PROCESSORS = _child('log processor', parents.LOG_PROCESSORS)
OPTIMIZERS = _child('optimizer', parents.OPTIMIZERS)
OPTIM_WRAPPERS = _child('optim wrapper', parents.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child(
    'optimizer wrapper constructor', parents.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child('parameter scheduler', parents.PARAM_SCHEDULERS)
DATASETS = _child('dataset', parents.DATASETS)
DATA_SAMPLERS = _child('data sampler', parents.DATA_SAMPLERS)
TRANSFORMS = _child('transform', parents.TRANSFORMS)
MODELS = _child('model', parents.MODELS)
MODEL_WRAPPERS = _child('model wrapper', parents.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child('weight initializer', parents.WEIGHT_INITIALIZERS)
BATCH_AUGMENTS = _child('batch augment', parents.BATCH_AUGMENTS)
TASK_UTILS = _child('task util', parents.TASK_UTILS)
METRICS = _child('metric', parents.METRICS)
EVALUATORS = _child('evaluator', parents.EVALUATORS)
VISUALIZERS = _child('visualizer', parents.VISUALIZERS)
VISBACKENDS = _child('vis_backend', parents.VISBACKENDS)
__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS',
    'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'PARAM_SCHEDULERS', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS',
    'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'BATCH_AUGMENTS', 'TASK_UTILS',
    'METRICS', 'EVALUATORS', 'VISUALIZERS', 'VISBACKENDS'
]
