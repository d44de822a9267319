"""How a tool ends when a run fails: the error's message last, not a trace.

A failed run's traceback stays (it helps a bug report), but the last lines
a user sees are the error's one-line message, or, after Ctrl-C, where the
run stopped and how to continue it.
"""
import contextlib
import difflib
import glob
import os.path as osp
import sys
import traceback
from typing import Callable, Iterator, List, Optional

from mmengine.config import Config

__all__ = ['load_config', 'reporting_run_errors']

_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _shipped_configs(path: str) -> List[str]:
    """Configs near ``path``: its folder's, ./configs' and the repo's."""
    folders = {osp.dirname(path) or '.', 'configs', osp.join(_REPO, 'configs')}
    found = []
    for folder in sorted(folders):
        if osp.isdir(folder):
            found += glob.glob(osp.join(glob.escape(folder), '**', '*.py'),
                               recursive=True)
    return [p for p in found if f'{osp.sep}_base_{osp.sep}' not in p]


def load_config(path: str, tool: str) -> Config:
    """``Config.fromfile``; a missing file names the closest config.

    Args:
        path (str): The config path given on the command line.
        tool (str): The tool's name, for the message.

    Returns:
        Config: The loaded config.

    Raises:
        SystemExit: If ``path`` is not a file.
    """
    if not osp.isfile(path):
        candidates = _shipped_configs(path)
        names = {osp.basename(p): p for p in candidates}
        close = difflib.get_close_matches(osp.basename(path), list(names),
                                          n=1, cutoff=0.6)
        shown = close and names[close[0]]
        if shown and not osp.isabs(path):
            shown = osp.relpath(shown)
        hint = f'; did you mean {shown}?' if shown else ''
        sys.exit(f'{tool}: error: config file {path} does not exist{hint}')
    return Config.fromfile(path)


@contextlib.contextmanager
def reporting_run_errors(
        tool: str,
        runner: Callable[[], Optional[object]] = lambda: None
) -> Iterator[None]:
    """End a failed or interrupted run with one clear line.

    Args:
        tool (str): The tool's name, for the messages.
        runner (callable): Returns the Runner once built (None before), for
            where an interrupted run stopped.

    Yields:
        None: Build and run the Runner inside.

    Raises:
        SystemExit: Code 1 after an error (the traceback, then
            ``TOOL: error: TYPE: message``), code 130 after Ctrl-C.
    """
    try:
        yield
    except KeyboardInterrupt:
        built = runner()
        where = 'stopped'
        if built is not None and getattr(built, 'train_loop', None) and \
                not isinstance(built.train_loop, dict):
            where = (f'stopped in epoch {built.epoch + 1}, after iteration '
                     f'{built.iter}; continue from the last checkpoint '
                     'with --resume')
        print(f'\n{tool}: {where}', file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    except Exception as e:  # noqa: B902  (every error ends the same way)
        traceback.print_exc()
        first = str(e).strip() or 'no message'
        sys.stderr.flush()
        raise SystemExit(
            f'{tool}: error: {type(e).__name__}: {first}') from None
