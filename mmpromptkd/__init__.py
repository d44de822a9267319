"""mmpromptkd: PromptKD for OpenMMLab. Importing it registers its components
in its own registries and changes nothing else in the process."""
from . import (apis, datasets, engine, evaluation, fileio,  # noqa: F401
               models, teacher_cache)
from .version import __version__

__all__ = ['__version__']
