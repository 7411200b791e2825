"""benchmarks/single_path_cost.py --quick runs both methods end to end and writes its JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "single_path_cost.py"


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
    assert sp["config"]["finetune_epochs"] == 0.5 and bo["config"]["finetune_epochs"] is None
    assert bo["search_epochs"] == 3  # 3 trials x 1 proxy epoch
    for r in (sp, bo):
        assert r["arch"].startswith("mbconv:") and r["energy_mj"] <= 15.0
        assert r["wall_seconds"] > r["search_seconds"] > 0
    verdict = report["verdict"]
    assert verdict["wall_ratio"] == sp["wall_seconds"] / bo["wall_seconds"]
    assert "wall-time ratio single-path / BO" in capsys.readouterr().out
