"""Shared fixtures: the bundled 8x8 digits split, a private training cache."""

from __future__ import annotations

import pytest

from adaptive_cnn.data import load_dataset
from adaptive_cnn.training import TrainingCache


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits, split with seed 0 (no download, loads in milliseconds)."""
    return load_dataset("digits", seed=0)


@pytest.fixture
def cache(tmp_path):
    return TrainingCache(tmp_path / "cache")
