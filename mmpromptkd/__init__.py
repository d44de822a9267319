"""mmpromptkd: PromptKD for OpenMMLab.

Importing the package applies the compatibility patches of
:mod:`mmpromptkd.compat` and registers every component.
"""
from . import compat  # noqa: F401  (patches must precede everything else)
from . import apis, datasets, engine, evaluation, models  # noqa: F401
from .version import __version__

__all__ = ['__version__']
