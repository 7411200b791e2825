"""What training a network yields: weights, held-out probabilities, accuracies, cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from adaptive_cnn.data.types import Preprocessing
from adaptive_cnn.training.config import TrainConfig


@dataclass(frozen=True, eq=False)
class TrainResult:
    """One trained network and its held-out outputs.

    Attributes:
        arch: canonical architecture string (the cache key's first part).
        dataset: dataset name; ``dataset_fingerprint`` identifies the exact split.
        config, seed, threads: what produced the weights (bitwise-reproducible on CPU).
        state_dict: the trained weights (CPU tensors).
        val_probs, test_probs: float32 class probabilities, shape (N_val, K) / (N_test, K),
            in the order of the dataset's val / test splits.
        val_accuracy, test_accuracy: top-1 accuracy in [0, 1].
        params: parameter count; macs: multiply-accumulates per image.
        train_seconds: wall time of the training that made the weights (not of a cache hit).
        cache_hit: True when this result was read from the cache, not trained now.
        cache_key: content address of the result.
    """

    arch: str
    family: str
    dataset: str
    dataset_fingerprint: str
    input_shape: tuple[int, int, int]
    num_classes: int
    preprocessing: Preprocessing
    config: TrainConfig
    seed: int
    threads: int
    state_dict: dict[str, torch.Tensor]
    val_probs: np.ndarray
    test_probs: np.ndarray
    val_accuracy: float
    test_accuracy: float
    final_train_loss: float
    params: int
    macs: int
    train_seconds: float
    cache_hit: bool
    cache_key: str

    def summary(self) -> dict[str, Any]:
        """JSON-ready description without the arrays and weights."""
        return {
            "arch": self.arch,
            "family": self.family,
            "dataset": self.dataset,
            "dataset_fingerprint": self.dataset_fingerprint,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "val_accuracy": self.val_accuracy,
            "test_accuracy": self.test_accuracy,
            "final_train_loss": self.final_train_loss,
            "params": self.params,
            "macs": self.macs,
            "train_seconds": self.train_seconds,
            "cache_hit": self.cache_hit,
            "cache_key": self.cache_key,
            "seed": self.seed,
            "threads": self.threads,
            "config": self.config.to_dict(),
            "preprocessing": self.preprocessing.to_dict(),
        }
