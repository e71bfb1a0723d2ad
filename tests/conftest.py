"""Shared fixtures: the shipped supernet and the real Fashion-MNIST files (small subsets)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def net():
    from supernets import load_supernet

    return load_supernet("resnet20-fashionmnist")


@pytest.fixture(scope="session")
def test_split():
    from supernets.data import load_split

    return load_split("test")
