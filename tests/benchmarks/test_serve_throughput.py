"""benchmarks/serve_throughput.py runs end to end with tiny settings and writes its JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "serve_throughput.py"


@pytest.mark.slow
def test_serve_throughput_writes_figures(tmp_path, capsys):
    pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")
    spec = importlib.util.spec_from_file_location("serve_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "serve.json"
    args = ["--seconds", "0.3", "--rounds", "2", "--concurrency", "1", "2"]
    args += ["--routing-images", "40"]
    assert module.main([*args, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["settings"]["runtime"] == "onnxruntime"  # acnn serve's default, both servers
    rows = report["throughput"]["acnn"]
    assert [r["concurrency"] for r in rows] == [1, 2]
    assert all(r["errors"] == 0 and r["requests"] > 0 and r["rounds"] == 2 for r in rows)
    # one server per delay; each level reports the best delay's median round
    by_delay = report["throughput"]["by_delay"]["acnn"]
    assert sorted(by_delay) == ["0", "2"]
    for i, row in enumerate(rows):
        assert row == max((by_delay[d][i] for d in by_delay), key=lambda r: r["requests_per_s"])
        assert row["server_cpu_us_per_request"] > 0
    if isinstance(report["throughput"]["mlserver"], list):
        assert all(r["errors"] == 0 for r in report["throughput"]["mlserver"])
        ratios = report["throughput"]["ratios"]
        assert [len(r["per_round"]) for r in ratios] == [2, 2]
        assert all(min(r["per_round"]) <= r["median"] <= max(r["per_round"]) for r in ratios)
        assert all(set(r["delays_ms"].values()) <= {0.0, 2.0} for r in ratios)
        for r, acnn, mlserver in zip(ratios, rows, report["throughput"]["mlserver"], strict=True):
            cpu = r["server_cpu_us_per_request"]
            assert cpu["acnn"] == acnn["server_cpu_us_per_request"]
            assert cpu["mlserver"] == mlserver["server_cpu_us_per_request"] > 0
    assert [r["batch_size"] for r in report["routing_overhead"]] == [1, 32]
    for r in report["routing_overhead"]:
        low, high = r["overhead_min_max"]
        assert r["repeats"] == 15 and low <= r["overhead"] <= high
    assert "routing overhead at batch 1" in capsys.readouterr().out
