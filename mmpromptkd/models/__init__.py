from .clip import *  # noqa: F401,F403
from .distillers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .prompt_learners import *  # noqa: F401,F403
from .students import *  # noqa: F401,F403
