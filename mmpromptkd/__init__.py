"""mmpromptkd: PromptKD for OpenMMLab.

Importing the package registers its components in the ``mmpromptkd``
registries (children of mmpretrain's) and nothing else: mmengine, mmpretrain
and torch behave as before for every other model in the process.
"""
from . import (apis, datasets, engine, evaluation, fileio,  # noqa: F401
               models, teacher_cache)
from .version import __version__

__all__ = ['__version__']
