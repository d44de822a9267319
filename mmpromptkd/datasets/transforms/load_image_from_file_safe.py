"""Image loading that names the file it cannot read, and may skip it."""
import io
import logging
import multiprocessing
import warnings
from typing import List, Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log
from PIL import Image

from mmpromptkd.registry import TRANSFORMS

ON_ERROR_CHOICES = ('raise', 'skip')
#: Pillow's limit against decompression bombs (about 89 M pixels).
DEFAULT_MAX_PIXELS = 89478485
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_JPEG_START = b'\xff\xd8'
_JPEG_END = b'\xff\xd9'


class UnreadableImageError(OSError):
    """An image file is missing, empty, truncated or cannot be decoded."""


def find_truncation(data: bytes) -> Optional[str]:
    """Why a PNG or JPEG byte string is cut short, or None.

    OpenCV returns a partly grey image for a truncated JPEG, so a file
    without its end marker is decoded with Pillow, which refuses it.
    """
    if data.startswith(_PNG_SIGNATURE):
        if b'IEND' in data[-12:]:
            return None
        suspect = 'the PNG file has no IEND chunk at its end'
    elif data.startswith(_JPEG_START):
        if data.rstrip(b'\x00').endswith(_JPEG_END):
            return None
        suspect = 'the JPEG file has no end marker'
    else:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception as e:  # noqa: BLE001  (any decoder error)
        return f'{suspect} and is truncated ({e})'
    return None


def check_declared_size(data: bytes, max_pixels: int) -> None:
    """ValueError if the image header declares more than ``max_pixels``
    (only the header is read; a format Pillow does not know passes)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Image.DecompressionBombError as e:  # beyond Pillow's own limit
        raise ValueError(f'its header declares too many pixels ({e})')
    except Exception:  # noqa: BLE001  (not an image Pillow knows)
        return
    if width * height > max_pixels:
        raise ValueError(f'its header declares {width}x{height} pixels, more '
                         f'than max_pixels={max_pixels}')


class _SharedCount:
    """A counter shared with the data-loader worker processes."""

    def __init__(self, value: int = 0) -> None:
        self._value = multiprocessing.Value('q', value)

    def add(self) -> None:
        with self._value.get_lock():
            self._value.value += 1

    @property
    def value(self) -> int:
        return int(self._value.value)

    def reset(self) -> None:
        with self._value.get_lock():
            self._value.value = 0

    # Workers started by ``fork`` share it through memory; workers started
    # by ``spawn`` receive it while being started. Any other copy
    # (``deepcopy``, pickling) gets a counter of its own.
    def __getstate__(self) -> dict:
        from multiprocessing.context import get_spawning_popen
        if get_spawning_popen() is not None:
            return dict(shared=self._value)
        return dict(value=self.value)

    def __setstate__(self, state: dict) -> None:
        if 'shared' in state:
            self._value = state['shared']
        else:
            self._value = multiprocessing.Value('q', state['value'])


@TRANSFORMS.register_module()
class LoadImageFromFileSafe(LoadImageFromFile):
    """``LoadImageFromFile`` that names unreadable files and can skip them.

    An unreadable image raises :class:`UnreadableImageError` naming it, or
    with ``on_error='skip'`` is counted and gives None (another sample is
    drawn), only where ``SkippedImagesHook`` sets ``skip_enabled``: in
    training pipelines, since an evaluation that quietly replaced test
    images would report wrong accuracies.

    Args:
        on_error (str): 'raise' or 'skip'.
        check_truncation (bool): Detect cut-short PNG and JPEG files.
        max_pixels (int, optional): Pixels an image header may declare,
            checked before decoding; None disables the check.
        **kwargs: Arguments of ``LoadImageFromFile`` but ``ignore_empty``.
    """

    def __init__(self,
                 on_error: str = 'raise',
                 check_truncation: bool = True,
                 max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
                 **kwargs) -> None:
        if on_error not in ON_ERROR_CHOICES:
            raise ValueError(f'on_error must be one of {ON_ERROR_CHOICES}, '
                             f'got {on_error!r}')
        if 'ignore_empty' in kwargs:
            raise ValueError('LoadImageFromFileSafe: use on_error="skip" '
                             'instead of ignore_empty')
        super().__init__(**kwargs)
        self.on_error = on_error
        self.check_truncation = check_truncation
        self.max_pixels = max_pixels
        #: Set by SkippedImagesHook for training pipelines.
        self.skip_enabled = False
        self._skipped = _SharedCount()
        #: Files skipped in this process since the last reset.
        self.skipped_paths: List[str] = []

    @property
    def skipped_count(self) -> int:
        """int: Files skipped since the last reset, workers included."""
        return self._skipped.value

    def reset_skipped(self) -> None:
        """Set the count of skipped files back to zero."""
        self._skipped.reset()
        self.skipped_paths = []

    def _read(self,
              filename: str,
              data: Optional[bytes] = None) -> np.ndarray:
        """Read (unless given) and decode one image, or raise."""
        if data is None and self.file_client_args is not None:
            client = fileio.FileClient.infer_client(self.file_client_args,
                                                    filename)
            data = client.get(filename)
        elif data is None:
            data = fileio.get(filename, backend_args=self.backend_args)
        if not data:
            raise ValueError('the file is empty')
        if self.max_pixels is not None:
            check_declared_size(data, self.max_pixels)
        if self.check_truncation:
            reason = find_truncation(data)
            if reason is not None:
                raise ValueError(reason)
        img = mmcv.imfrombytes(
            data, flag=self.color_type, backend=self.imdecode_backend)
        if img is None:
            raise ValueError(f'the {self.imdecode_backend} decoder cannot '
                             'decode it')
        return img

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image of ``results['img_path']``, or of its
        ``img_bytes`` (from a tar shard); None if skipped."""
        # mmpretrain's inferencers read the image themselves and pass it.
        if results.get('img_path') is None and 'img' in results:
            return results
        filename = results['img_path']
        try:
            img = self._read(filename, results.pop('img_bytes', None))
        except Exception as e:  # noqa: BLE001  (reported with the file name)
            return self._fail(filename, e)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def _fail(self, filename: str, error: Exception) -> None:
        reason = str(error) or type(error).__name__
        message = f'cannot read image {filename}: {reason}'
        if self.on_error == 'skip' and self.skip_enabled:
            self._skipped.add()
            self.skipped_paths.append(filename)
            print_log(
                f'{message}; skipped it (on_error="skip")',
                logger='current',
                level=logging.WARNING)
            return None
        if self.on_error == 'skip':
            message += ('. on_error="skip" applies only to training '
                        'pipelines run with SkippedImagesHook in '
                        'custom_hooks; evaluation never skips an image')
        raise UnreadableImageError(message) from error

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] + f", on_error='{self.on_error}', "
                f'check_truncation={self.check_truncation}, '
                f'max_pixels={self.max_pixels})')
