"""The doctor's tests run tiny models: one intra-op thread (on a shared 2-core machine, two threads
spin-waiting on each other made each step 10-60x slower)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
