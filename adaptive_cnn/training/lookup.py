"""Questions about the training cache that train nothing.

Kept out of :mod:`adaptive_cnn.training.trainer`: that module's source is hashed into
every cache key (:func:`~adaptive_cnn.training.trainer.code_version`), so code that
cannot change what training produces lives here.
"""

from __future__ import annotations

from typing import Any

from adaptive_cnn.data.types import DatasetSplits
from adaptive_cnn.networks import parse_arch
from adaptive_cnn.training.cache import TrainingCache, cache_key
from adaptive_cnn.training.config import TrainConfig
from adaptive_cnn.training.trainer import _identity, torch_threads


def trained_entry(
    arch: str,
    dataset: DatasetSplits,
    config: TrainConfig,
    seed: int,
    *,
    threads: int | None,
    cache: TrainingCache,
) -> dict[str, Any] | None:
    """The cache's summary (``meta.json``: seconds, accuracies...) of the training that
    :func:`~adaptive_cnn.training.train` with these arguments would reuse, or None."""
    with torch_threads(threads) as used_threads:
        identity = _identity(parse_arch(arch), dataset, config, seed, used_threads)
    return cache.meta(cache_key(identity))


def is_trained(
    arch: str,
    dataset: DatasetSplits,
    config: TrainConfig,
    seed: int,
    *,
    threads: int | None,
    cache: TrainingCache | None,
) -> bool:
    """Whether :func:`~adaptive_cnn.training.train` with these arguments (and no initial
    weights) would be a cache hit, i.e. train nothing."""
    if cache is None:
        return False
    with torch_threads(threads) as used_threads:
        identity = _identity(parse_arch(arch), dataset, config, seed, used_threads)
    return cache_key(identity) in cache
