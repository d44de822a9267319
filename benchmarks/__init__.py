"""The studies behind the figures in ``docs/`` (not installed): run them
from the repository root as ``python -m benchmarks NAME [ARGS]``."""
import os.path as osp
import sys

# The demo's data generator (synthetic_shapes) lives with the tools that
# write it, in tools/misc.
_TOOLS_MISC = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                       'tools', 'misc')
if _TOOLS_MISC not in sys.path:
    sys.path.insert(0, _TOOLS_MISC)
