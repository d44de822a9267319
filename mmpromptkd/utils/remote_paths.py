"""Checkpoint paths that are URLs, and their refusal."""
import re
from typing import Any, NoReturn

# mmengine's checkpoint schemes other than local paths. Its loaders of
# URLs unpickle downloads with ``weights_only=False``.
REMOTE_SCHEMES = ('http://', 'https://', 'torchvision://', 'pavi://',
                  'openmmlab://', 'open-mmlab://', 'modelzoo://', 'mmcls://',
                  r'(\S+\:)?s3://', r'(\S+\:)?petrel://')


def is_remote_path(path: Any) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a file.

    Args:
        path (Any): A checkpoint path.

    Returns:
        bool: True for strings such as ``https://...`` or ``s3://...``.
    """
    return isinstance(path, str) and re.match(
        r'([A-Za-z][\w+.-]*:)?[A-Za-z][\w+.-]*://', path) is not None


def raise_remote_refused(path: str, map_location: Any = None) -> NoReturn:
    """Refuse a remote checkpoint, saying how to use it instead.

    Args:
        path (str): The URL.
        map_location: Unused; mmengine passes it.

    Raises:
        ValueError: Always, naming the URL.
    """
    raise ValueError(
        f'{path}: remote checkpoints are not loaded (the download would be '
        'unpickled without the safety checks of local files). Download it '
        'first, e.g. `curl -L -o model.pth URL`, and pass the local path; '
        'it is then read with weights_only=True.')
