"""Scale-out of `acnn design`: batch ask (constant liar), local processes and Dask."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from adaptive_cnn.design import CascadeSpace, GaussianProcessBackend, RandomBackend, design
from adaptive_cnn.design.executors import InlineExecutor, make_executor


def _told_backend(seed: int = 0) -> tuple[GaussianProcessBackend, CascadeSpace]:
    """A GP backend told 5 random points with seeded random losses."""
    space = CascadeSpace(("conv", "conv"), 0)
    backend = GaussianProcessBackend(space, seed, initial_points=3, candidates=60)
    rng = np.random.default_rng(1)
    for _ in range(5):
        point = space.canonical(space.sample(rng))
        backend.tell(point, float(rng.uniform(-1.0, 0.0)))
    return backend, space


def test_ask_is_seeded_by_step_and_the_constant_liar_avoids_pending_points() -> None:
    backend, _ = _told_backend()
    first = backend.ask(5)
    assert backend.ask(5) == first  # same step, same proposal (resume-safe)
    # with `first` in flight, the refitted model (lie = best loss) proposes something else
    assert backend.ask(6, pending=[first]) != first
    random = RandomBackend(backend.space, 3)
    assert random.ask(7) == random.ask(7, pending=[first]) != random.ask(8)


def test_unreachable_dask_scheduler_is_a_clear_error(monkeypatch) -> None:
    import adaptive_cnn.design.executors as executors
    from adaptive_cnn.errors import ConfigError

    monkeypatch.setattr(executors, "DASK_CONNECT_TIMEOUT_S", 1)
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        make_executor("dask://127.0.0.1:9", 1, None)


def test_one_worker_runs_in_process() -> None:
    plan = make_executor(None, 1, None)
    assert isinstance(plan.executor, InlineExecutor) and plan.workers == 1
    assert plan.executor.submit(divmod, 7, 2).result() == (3, 1)
    failed = plan.executor.submit(divmod, 1, 0)
    assert isinstance(failed.exception(), ZeroDivisionError)


def _journal(run) -> list[dict]:
    return [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_worker_processes_then_resume(tiny_config, tmp_path):
    cache, config = tmp_path / "cache", tiny_config(trials=4)
    design(config, tmp_path / "seq", baselines=False, cache_root=cache)
    sequential = _journal(tmp_path / "seq")
    par = design(config, tmp_path / "par", baselines=False, workers=2, cache_root=cache)
    result = par.summary
    parallel = _journal(tmp_path / "par")
    assert result["evaluations"] == 4 and len(parallel) == 4
    assert all(r["worker"].endswith(f":{os.getpid()}") for r in sequential)
    assert all(not r["worker"].endswith(f":{os.getpid()}") for r in parallel)
    assert sorted(r["index"] for r in parallel) == [0, 1, 2, 3]
    # the random initial points are seeded by their step: the same as the sequential run's
    first = {r["index"]: r["stages"] for r in sequential if r["index"] < 2}
    assert {r["index"]: r["stages"] for r in parallel if r["index"] < 2} == first
    # lose the last evaluation, resume with 2 workers: three are kept, one new is trained
    kept = (tmp_path / "par" / "journal.jsonl").read_text().splitlines()[:3]
    (tmp_path / "par" / "journal.jsonl").write_text("\n".join(kept) + "\n")
    design(config, tmp_path / "par", resume=True, baselines=False, workers=2, cache_root=cache)
    resumed = _journal(tmp_path / "par")
    assert resumed[:3] == [json.loads(line) for line in kept] and len(resumed) == 4
    assert len({r["index"] for r in resumed}) == 4


@pytest.mark.slow
def test_dask_local_cluster_runs_the_search(tiny_config, tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask[distributed] not installed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=None,
    ) as cluster:
        url = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        run = design(
            tiny_config(trials=4),
            tmp_path / "run",
            baselines=False,
            executor=url,
            cache_root=tmp_path / "cache",
        )
    result = run.summary
    journal = _journal(tmp_path / "run")
    assert result["evaluations"] == 4 and len(journal) == 4
    assert result["trained_infeasible"] == 0
    # every candidate was trained in a Dask worker process, none in this one
    assert all(not r["worker"].endswith(f":{os.getpid()}") for r in journal)
    # the workers trained into the shared cache: the final training found the proxies there
    assert any((tmp_path / "cache" / "entries").rglob("meta.json"))
