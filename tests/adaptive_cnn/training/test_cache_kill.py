"""A writer killed with SIGKILL mid-write never leaves an entry that is read as valid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from adaptive_cnn.training import TrainConfig, TrainingCache, train

CHILD = textwrap.dedent(
    """
    import sys, time
    from adaptive_cnn.data import load_dataset
    from adaptive_cnn.training import TrainConfig, TrainingCache, train
    from adaptive_cnn.training import cache as cache_module

    def stall(path):  # the first file is on disk; hang before the entry is complete
        print("writing", flush=True)
        time.sleep(120)

    cache_module._fsync = stall
    train("c16k3p-fc32", load_dataset("digits"), TrainConfig(epochs=0.2), threads=1,
          cache=TrainingCache(sys.argv[1]))
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_sigkill_during_store_leaves_no_valid_entry(tmp_path, digits):
    root = tmp_path / "cache"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert list((root / "tmp").iterdir()), "the killed writer left its temporary folder"
    assert not list(root.glob("entries/*/*/meta.json"))

    cache = TrainingCache(root)
    result = train("c16k3p-fc32", digits, TrainConfig(epochs=0.2), threads=1, cache=cache)
    assert not result.cache_hit
    assert cache.load(result.cache_key).cache_hit
    time.sleep(0.01)
    assert cache.prune_temporary(older_than_s=0) == 1
