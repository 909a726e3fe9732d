"""Shared fixtures."""

from __future__ import annotations

import pytest

from tokenswarm.runtime.threads import torch_threads


@pytest.fixture
def one_thread():
    """Run a test on one torch intra-op thread: loops of small tensor operations gain nothing
    from intra-op parallelism and are 10-30x slower with it on a busy machine (measured on
    2 shared cores). Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    with torch_threads(1):
        yield
