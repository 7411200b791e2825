"""Content-addressed cache of trained networks.

An entry is a folder named by the sha256 of everything that determines the weights
(architecture, dataset fingerprint, training config, seed, threads, code version). It is
written into a private temporary folder and renamed into place in one atomic step, so a
process killed mid-write leaves only a temporary folder that is never read as an entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaptive_cnn.data.types import Preprocessing
from adaptive_cnn.errors import CacheError
from adaptive_cnn.training.config import TrainConfig
from adaptive_cnn.training.result import TrainResult

ENTRY_FORMAT = 1
_FILES = ("meta.json", "weights.pt", "val_probs.npy", "test_probs.npy")


def default_cache_dir() -> Path:
    """``$ACNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/acnn``, else ``~/.cache/acnn``."""
    if os.environ.get("ACNN_CACHE_DIR"):
        return Path(os.environ["ACNN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "acnn"


def cache_key(identity: dict[str, Any]) -> str:
    """sha256 hex digest of a JSON-able identity mapping (key order does not matter)."""
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


class TrainingCache:
    """A folder of trained networks addressed by :func:`cache_key`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _entry_dir(self, key: str) -> Path:
        return self.root / "entries" / key[:2] / key

    def __contains__(self, key: str) -> bool:
        return (self._entry_dir(key) / "meta.json").is_file()

    def load(self, key: str) -> TrainResult | None:
        """Return the cached result (``cache_hit=True``), or None when absent or unreadable."""
        folder = self._entry_dir(key)
        if not (folder / "meta.json").is_file():
            return None
        try:
            return _read_entry(folder, key)
        except Exception as exc:  # a damaged entry must never stop training
            warnings.warn(f"ignoring unreadable cache entry {folder}: {exc}", stacklevel=2)
            return None

    def store(self, result: TrainResult) -> Path:
        """Write ``result`` atomically under its key; an existing entry is kept as is."""
        final = self._entry_dir(result.cache_key)
        tmp_root = self.root / "tmp"
        try:
            tmp_root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=result.cache_key[:16] + "-", dir=tmp_root))
        except OSError as exc:
            raise CacheError(f"cannot write the training cache at {self.root}: {exc}") from exc
        try:
            _write_entry(tmp, result)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(tmp, final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if (final / "meta.json").is_file():
                return final  # another process stored the same entry first
            raise
        return final

    def meta(self, key: str) -> dict[str, Any] | None:
        """The summary (``meta.json``) of the entry stored under ``key``, or None."""
        try:
            meta = json.loads((self._entry_dir(key) / "meta.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return meta if isinstance(meta, dict) else None

    def entries(self) -> Iterator[dict[str, Any]]:
        """The summaries (``meta.json``) of every stored entry, in key order; a torn or
        foreign entry is skipped."""
        for meta_path in sorted((self.root / "entries").glob("*/*/meta.json")):
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(meta, dict) and meta.get("format") == ENTRY_FORMAT:
                yield meta

    def prune_temporary(self, older_than_s: float = 3600.0) -> int:
        """Remove temporary folders left by killed writers; returns how many were removed."""
        tmp_root = self.root / "tmp"
        if not tmp_root.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        stale = [p for p in tmp_root.iterdir() if p.stat().st_mtime < cutoff]
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
        return len(stale)


def _write_entry(folder: Path, result: TrainResult) -> None:
    torch.save(result.state_dict, folder / "weights.pt")
    np.save(folder / "val_probs.npy", result.val_probs, allow_pickle=False)
    np.save(folder / "test_probs.npy", result.test_probs, allow_pickle=False)
    meta = {"format": ENTRY_FORMAT, **result.summary()}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    for name in _FILES:
        _fsync(folder / name)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _read_entry(folder: Path, key: str) -> TrainResult:
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("format") != ENTRY_FORMAT or meta.get("cache_key") != key:
        raise ValueError("entry of another format or key")
    state = torch.load(folder / "weights.pt", map_location="cpu", weights_only=True)
    val_probs = np.load(folder / "val_probs.npy", allow_pickle=False)
    test_probs = np.load(folder / "test_probs.npy", allow_pickle=False)
    return TrainResult(
        arch=meta["arch"],
        family=meta["family"],
        dataset=meta["dataset"],
        dataset_fingerprint=meta["dataset_fingerprint"],
        input_shape=tuple(meta["input_shape"]),
        num_classes=meta["num_classes"],
        preprocessing=Preprocessing.from_dict(meta["preprocessing"]),
        config=TrainConfig.from_dict(meta["config"]),
        seed=meta["seed"],
        threads=meta["threads"],
        state_dict=state,
        val_probs=val_probs,
        test_probs=test_probs,
        val_accuracy=meta["val_accuracy"],
        test_accuracy=meta["test_accuracy"],
        final_train_loss=meta["final_train_loss"],
        params=meta["params"],
        macs=meta["macs"],
        train_seconds=meta["train_seconds"],
        cache_hit=True,
        cache_key=key,
    )
