"""The studies of ``benchmarks/`` run at micro scale on tiny models."""
from pathlib import Path

import pytest
import torch

#: Checksums of the committed tiny CLIPs; without them studies take random
#: weights (``--random-weights``).
TINY_CLIP_SUMS = Path(__file__).resolve().parents[2] / 'checkpoints' / \
    'tiny_clip' / 'SHA256SUMS'


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models: with the few cores shared, more threads only contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def weights_args():
    """The arguments that choose the studies' CLIP weights."""
    return [] if TINY_CLIP_SUMS.is_file() else ['--random-weights']
