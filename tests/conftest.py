"""Shared fixtures: the shipped supernet and the real Fashion-MNIST files (small subsets)."""

from __future__ import annotations

import os

import pytest
import torch

# Tests run single-threaded and deterministic; speed is measured by benchmarks, not here.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def net():
    from supernets import load_supernet

    return load_supernet("resnet20-fashionmnist")


@pytest.fixture(scope="session")
def test_split():
    from supernets.data import load_split

    return load_split("test")
