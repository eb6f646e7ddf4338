"""Shared pytest setup: small, fast defaults for every test."""

import os

import pytest

# Tests run on a 2-core machine beside other work: keep torch to one thread per process.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(1)
    yield
