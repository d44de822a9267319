"""How a tool ends when a run fails: the error's message last, not a trace.
"""
import contextlib
import difflib
import glob
import os.path as osp
import sys
import traceback
from typing import Iterator, List

from mmengine.config import Config

from .launch import CONTINUE_HINT

__all__ = ['load_config', 'reporting_run_errors']

_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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
        # Configs near it: its folder's, ./configs' and the repo's.
        folders = {osp.dirname(path) or '.', 'configs',
                   osp.join(_REPO, 'configs')}
        found: List[str] = []
        for folder in sorted(f for f in folders if osp.isdir(f)):
            found += glob.glob(osp.join(glob.escape(folder), '**', '*.py'),
                               recursive=True)
        names = {osp.basename(p): p for p in found
                 if f'{osp.sep}_base_{osp.sep}' not in p}
        close = difflib.get_close_matches(osp.basename(path), list(names),
                                          n=1, cutoff=0.6)
        shown = close and names[close[0]]
        if shown and not osp.isabs(path):
            shown = osp.relpath(shown)
        hint = f'; did you mean {shown}?' if shown else ''
        sys.exit(f'{tool}: error: config file {path} does not exist{hint}')
    return Config.fromfile(path)


@contextlib.contextmanager
def reporting_run_errors(tool: str) -> Iterator[None]:
    """End a failed or interrupted command-line run with one clear line.

    Args:
        tool (str): The tool's name, for the messages.

    Yields:
        None: Run the tool's ``main()`` inside.

    Raises:
        SystemExit: Code 1 after an error (the traceback, then
            ``TOOL: error: TYPE: message``), code 130 after Ctrl-C (where
            training stopped, and how to go on).
    """
    try:
        yield
    except KeyboardInterrupt as e:
        from mmengine.logging import MessageHub
        hub = MessageHub.get_current_instance()
        epoch, step = hub.get_info('epoch'), hub.get_info('iter')
        hint = str(e)
        where = 'stopped'
        if epoch is not None and step is not None:
            where = f'stopped in epoch {epoch + 1}, after iteration {step}'
            hint = hint or CONTINUE_HINT
        if hint:
            where = f'{where}; {hint}'
        print(f'\n{tool}: {where}', file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    except Exception as e:  # noqa: B902  (every error ends the same way)
        traceback.print_exc()
        first = str(e).strip() or 'no message'
        sys.stderr.flush()
        raise SystemExit(
            f'{tool}: error: {type(e).__name__}: {first}') from None
