"""Where the search's training runs: in-process, local processes or a Dask cluster.

The Designer hands each candidate to a ``concurrent.futures.Executor`` as a
:class:`TrainingJob` — plain data (architecture strings, dataset name, training budget,
cache folder), so it pickles cheaply and any worker can run it: the worker loads the
dataset once by name, trains through the shared training cache and sends back only the
validation probabilities. Everything else (costs, thresholds, the journal, the optimiser)
stays in the main process.

- in-process (default): :class:`InlineExecutor` runs each job when it is submitted;
- ``--workers N``: a ``ProcessPoolExecutor`` of N spawned processes on this machine;
- ``--executor dask://HOST:PORT``: the workers of a Dask distributed scheduler (the
  training cache folder must then be on a file system every worker sees).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import numpy as np

from adaptive_cnn.data.types import DatasetSplits
from adaptive_cnn.errors import ConfigError
from adaptive_cnn.training import TrainConfig, TrainingCache, train

DASK_SCHEME = "dask://"
DASK_CONNECT_TIMEOUT_S = 10

# Datasets already in memory, by (name, data_dir, split_seed): a worker process loads each
# once; the main process registers its own copy so in-process jobs load nothing.
_DATASETS: dict[tuple[str, str | None, int], DatasetSplits] = {}


@dataclass(frozen=True)
class TrainingJob:
    """Train a candidate's local networks; what a worker needs, and nothing more.

    Attributes:
        archs: the architecture strings of the local stages.
        dataset, data_dir, split_seed: which dataset split to train and validate on.
        config: the training budget (the proxy budget during the search).
        seed: seed of training.
        threads: torch threads in the worker (None: the worker's default).
        cache_root: the training cache folder (None: train without a cache).
    """

    archs: tuple[str, ...]
    dataset: str
    data_dir: str | None
    split_seed: int
    config: TrainConfig
    seed: int
    threads: int | None
    cache_root: str | None

    @property
    def dataset_key(self) -> tuple[str, str | None, int]:
        return (self.dataset, self.data_dir, self.split_seed)


@dataclass(frozen=True)
class JobResult:
    """Validation probabilities of each local stage, shape (N_val, K), the wall time,
    which process trained them (``host:pid``) and each stage's training seconds (of the
    training that made its weights, also when it came from the cache)."""

    val_probs: list[np.ndarray]
    seconds: float
    worker: str = ""
    train_seconds: tuple[float, ...] = ()


def remember_dataset(key: tuple[str, str | None, int], dataset: DatasetSplits) -> None:
    """Let jobs in this process use an already-loaded dataset."""
    _DATASETS[key] = dataset


def run_training_job(job: TrainingJob) -> JobResult:
    """Train (or fetch from the cache) every local network of ``job``; runs in a worker."""
    start = time.monotonic()
    dataset = _DATASETS.get(job.dataset_key)
    if dataset is None:
        from adaptive_cnn.data import load_dataset

        dataset = load_dataset(job.dataset, data_dir=job.data_dir, seed=job.split_seed)
        _DATASETS[job.dataset_key] = dataset
    cache = TrainingCache(job.cache_root) if job.cache_root else None
    results = [
        train(arch, dataset, job.config, job.seed, threads=job.threads, cache=cache)
        for arch in job.archs
    ]
    return JobResult(
        [r.val_probs for r in results],
        time.monotonic() - start,
        f"{socket.gethostname()}:{os.getpid()}",
        tuple(r.train_seconds for r in results),
    )


class InlineExecutor(Executor):
    """Runs each submitted call at once, in this process (the default executor)."""

    workers = 1

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered through the future, like any executor
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            future.set_exception(exc)
        return future


@dataclass(frozen=True)
class ExecutorPlan:
    """How evaluations run: an executor, how many at once, and torch threads per job."""

    executor: Executor
    workers: int
    threads: int | None
    description: str


def make_executor(spec: str | None, workers: int, threads: int | None) -> ExecutorPlan:
    """The executor for ``--executor`` (a ``dask://HOST:PORT`` URL) or ``--workers``.

    Args:
        spec: a Dask scheduler URL, or None for this machine.
        workers: evaluations at once on this machine (1 = in-process).
        threads: torch threads per job (None: the cores shared among the local workers).

    Raises:
        ConfigError: a bad worker count, an unknown executor URL, Dask missing or its
            scheduler unreachable.
    """
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if spec:
        return _dask_executor(spec, threads)
    if workers == 1:
        return ExecutorPlan(InlineExecutor(), 1, threads, "in-process")
    per_worker = threads or max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
    return ExecutorPlan(
        pool, workers, per_worker, f"{workers} local processes x {per_worker} threads"
    )


def _dask_executor(spec: str, threads: int | None) -> ExecutorPlan:
    if not spec.startswith(DASK_SCHEME) or len(spec) == len(DASK_SCHEME):
        raise ConfigError(f"--executor must look like dask://HOST:PORT, got {spec!r}")
    try:
        from distributed import Client
    except ImportError as exc:
        raise ConfigError(
            "--executor dask:// needs Dask: pip install 'acnn[dask]' (dask[distributed])"
        ) from exc
    address = "tcp://" + spec[len(DASK_SCHEME) :]
    try:
        client = Client(address, timeout=DASK_CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    workers = max(1, sum(client.nthreads().values()))
    return ExecutorPlan(
        _DaskExecutor(client), workers, threads, f"Dask at {address} ({workers} slots)"
    )


class _DaskExecutor(Executor):
    """A Dask client's executor that also closes the client on shutdown."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._executor = client.get_executor(pure=False)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        return self._executor.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._executor.shutdown(wait=wait)
        self._client.close()
