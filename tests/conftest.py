"""Shared fixtures: tiny CLIP configs (no weights are ever downloaded)."""
import copy
import logging
import os

import mmengine.config.config
import pytest
import torch
from mmengine.logging import MMLogger

# Widths are multiples of 64 so that the OpenAI weight layout (heads of
# width 64) can describe the same model.
TINY_CLIP = dict(
    embed_dim=32,
    vision_cfg=dict(
        image_size=32, patch_size=8, width=64, layers=3, head_width=32),
    text_cfg=dict(
        context_length=77, vocab_size=49408, width=64, heads=2, layers=3))

TINY_CLIP_LARGE = dict(
    embed_dim=48,
    vision_cfg=dict(
        image_size=32, patch_size=8, width=64, layers=4, head_width=32),
    text_cfg=dict(
        context_length=77, vocab_size=49408, width=64, heads=2, layers=4))


@pytest.fixture
def tiny_clip_cfg():
    """A weight source for a tiny random CLIP with QuickGELU."""
    return dict(model_cfg=copy.deepcopy(TINY_CLIP), quick_gelu=True)


@pytest.fixture
def tiny_large_clip_cfg():
    """A slightly larger tiny CLIP, used as a teacher."""
    return dict(model_cfg=copy.deepcopy(TINY_CLIP_LARGE), quick_gelu=True)


@pytest.fixture(autouse=True, scope='session')
def _unformatted_config_text():
    """Config text as mmengine writes it, without yapf's layout.

    mmengine formats every config it logs or dumps with yapf (about 0.3 s
    each): more than half of an in-process tiny training run. The tests
    read what configs say, never their layout; the unformatted text is the
    same Python. (mmengine's ``gc.collect`` at each dataset build stays:
    it also ends the dataloader workers of earlier runs.)
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mmengine.config.config, 'FormatCode',
                      lambda text, **kwargs: (text, False))
        yield


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pytest_configure(config):
    """Under pytest-xdist, each worker (and each process it starts) gets an
    equal share of the cores: more threads than cores slow every job."""
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', 0))
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        for name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
            os.environ[name] = threads
        torch.set_num_threads(int(threads))


def pytest_addoption(parser):
    parser.addoption(
        '--real-size', action='store_true',
        help='also run the dry runs and parity checks at real size (random '
        'weights of the real architectures; minutes each on a CPU)')


def pytest_collection_modifyitems(config, items):
    if config.getoption('--real-size'):
        return
    skip = pytest.mark.skip(reason='a real-size dry run: pass --real-size')
    for item in items:
        if 'real_size' in item.keywords:
            item.add_marker(skip)


class _LogRecords(logging.Handler):
    """Keeps the messages of the records it handles."""

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def log_messages():
    """The messages the current MMLogger logs during the test."""
    logger = MMLogger.get_current_instance()
    handler = _LogRecords()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)
