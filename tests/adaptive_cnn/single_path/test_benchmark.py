"""benchmarks/single_path_cost.py --quick runs both methods end to end and writes its JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[3] / "benchmarks" / "single_path_cost.py"


@pytest.mark.slow
def test_quick_benchmark_writes_both_methods(predictor_file, tmp_path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("single_path_cost", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "cost.json"
    args = ["--quick", "--budget", "15mJ", "--predictor", predictor_file, "--threads", "1"]
    args += ["--finetune-epochs", "0.5", "--out", str(out)]
    assert module.main(args + ["--work", str(tmp_path / "work")]) == 0
    report = json.loads(out.read_text())
    sp, bo = report["results"]
    assert (sp["method"], bo["method"]) == ("single-path", "bo")
    assert sp["config"]["method"] == "single-path" and bo["config"]["method"] == "bo"
    assert sp["config"]["finetune_epochs"] == 0.5 and bo["config"].get("finetune_epochs") is None
    assert bo["search_epochs"] == 3  # 3 trials x 1 proxy epoch
    assert 1 <= len(sp["lambda_trials"]) <= 2 and "lambda_trials" not in bo
    assert {"lambda", "energy_mj", "raw_energy_mj", "dropped"} <= set(sp["lambda_trials"][0])
    for r in (sp, bo):
        assert r["arch"].startswith("mbconv:") and r["energy_mj"] <= 15.0
        assert r["wall_seconds"] > r["search_seconds"] > 0
        assert r["wall_seconds"] > r["final_training_seconds"] > 0
    verdict = report["verdict"]
    assert verdict["wall_ratio"] == sp["wall_seconds"] / bo["wall_seconds"]
    searches = (sp["wall_seconds"] - sp["final_training_seconds"]) / (
        bo["wall_seconds"] - bo["final_training_seconds"]
    )
    assert verdict["ratio_without_final_training"] == pytest.approx(searches)
    assert "wall-time ratio single-path / BO" in capsys.readouterr().out


def test_the_search_subset_and_width_reach_the_single_path_run_only(tmp_path) -> None:
    from adaptive_cnn.reproduce.search_cost import design_config, resolve_settings

    given = {"budget": "22mJ", "proxy_subset": 4000, "search_subset": 60000}
    s = resolve_settings(False, {**given, "search_width": 1.0, "trials": 10})

    kw = {"seed": 0, "predictor": None, "threads": 1, "quick": False}
    sp, bo = (design_config(m, s, **kw) for m in ("single-path", "bo"))
    assert sp.proxy_subset == 60000 and sp.search.search_width == 1.0
    assert bo.proxy_subset == 4000 and not hasattr(bo.search, "search_width")
    # without a search subset both search on the BO's proxy subset
    s = resolve_settings(False, {"budget": "22mJ", "proxy_subset": 4000})
    sp = design_config("single-path", s, **kw)
    assert sp.proxy_subset == 4000 and sp.search.search_width is None
