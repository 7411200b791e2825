"""Deterministic training of registry networks with a content-addressed cache."""

from adaptive_cnn.training.cache import TrainingCache, cache_key, default_cache_dir
from adaptive_cnn.training.config import TrainConfig
from adaptive_cnn.training.lookup import is_trained, trained_entry
from adaptive_cnn.training.result import TrainResult
from adaptive_cnn.training.trainer import (
    TrainProgress,
    accuracy,
    code_version,
    predict_probs,
    torch_threads,
    train,
)

__all__ = [
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "TrainingCache",
    "accuracy",
    "cache_key",
    "code_version",
    "default_cache_dir",
    "is_trained",
    "trained_entry",
    "predict_probs",
    "torch_threads",
    "train",
]
