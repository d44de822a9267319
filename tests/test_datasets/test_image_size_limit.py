"""A small file that declares a huge image is refused before decoding."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mmpromptkd.datasets.transforms.load_image_from_file_safe import (
    DEFAULT_MAX_PIXELS, LoadImageFromFileSafe, UnreadableImageError)


def png_declaring(path, width, height):
    """A PNG whose header says ``width`` x ``height``; a few bytes of data."""

    def chunk(kind, body):
        return (struct.pack('>I', len(body)) + kind + body +
                struct.pack('>I', zlib.crc32(kind + body)))

    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) +
                     chunk(b'IDAT', zlib.compress(b'\x00' * 64)) +
                     chunk(b'IEND', b''))
    return path


@pytest.mark.parametrize('size', [(16000, 16000), (9500, 9500)])
def test_a_declared_giant_is_refused_by_name(tmp_path, size):
    path = png_declaring(tmp_path / 'bomb.png', *size)
    assert path.stat().st_size < 1000
    with pytest.raises(UnreadableImageError,
                       match=r'bomb\.png.*declares') as error:
        LoadImageFromFileSafe()(dict(img_path=str(path)))
    assert size[0] * size[1] > DEFAULT_MAX_PIXELS
    assert 'pixels' in str(error.value)


def test_the_limit_is_configurable(tmp_path):
    path = tmp_path / 'small.png'
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(path)
    assert LoadImageFromFileSafe()(
        dict(img_path=str(path)))['img'].shape == (20, 30, 3)
    with pytest.raises(UnreadableImageError, match='30x20 pixels'):
        LoadImageFromFileSafe(max_pixels=599)(dict(img_path=str(path)))
