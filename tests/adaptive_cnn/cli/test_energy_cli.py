"""`acnn profile` -> `acnn fit-energy` -> `acnn energy-report` / `acnn predict`, end to end.

Two real (small) profiles are taken on this machine: one to fit, one held out. Timings are
real and vary, so the tests check the pipeline and the report's structure, not accuracy
(benchmarks/energy_model_accuracy.py measures that).
"""

from __future__ import annotations

import json

import pytest

from adaptive_cnn.cli.main import main
from adaptive_cnn.networks import get_family, list_networks

SMALL = ["--quick", "--layers", "40", "--networks", "8", "--rounds", "2", "--quiet"]
ANCHORS = sum(len(get_family(name).references()) for name in list_networks())


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    root = tmp_path_factory.mktemp("energy")
    fit, held = root / "fit", root / "held"
    assert main(["profile", "--out", str(fit), *SMALL]) == 0
    assert main(["profile", "--out", str(held), "--seed", "1", "--skip-layers", *SMALL]) == 0
    predictor = root / "predictor.json"
    assert main(["fit-energy", str(fit), "--out", str(predictor)]) == 0
    return fit, held, predictor


def test_profile_writes_settings_and_records(profiles) -> None:
    fit, held, _ = profiles
    settings = json.loads((fit / "profile.json").read_text())
    assert settings["device"] == "local" and settings["repeats"] == 30
    assert settings["power"]["name"] in ("declared", "rapl", "nvml", "jetson-ina")
    lines = (fit / "layers.jsonl").read_text().splitlines()
    assert len(lines) >= 40  # sampled layers plus the grid over every kind
    record = json.loads(lines[0])
    assert record["energy_label"] in ("estimated", "measured")
    assert not (held / "layers.jsonl").exists()
    records = [json.loads(x) for x in (held / "networks.jsonl").read_text().splitlines()]
    anchors = [r for r in records if r.get("anchor")]
    assert len(records) == 8 + ANCHORS and len(anchors) == ANCHORS  # the references


def test_profile_resumes_without_re_measuring(profiles, capsys) -> None:
    fit, _, _ = profiles
    before = (fit / "layers.jsonl").read_text()
    assert main(["profile", "--out", str(fit), *SMALL]) == 0
    assert (fit / "layers.jsonl").read_text() == before
    assert f"layer and {8 + ANCHORS} network records" in capsys.readouterr().out


def test_report_json_has_the_promised_keys(profiles, capsys) -> None:
    _, held, predictor = profiles
    capsys.readouterr()
    assert main(["energy-report", str(predictor), "--profile", str(held), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("network_mape", "within_10pct", "flops_baseline_mape", "n_networks"):
        assert key in report
    assert report["n_networks"] == 8 and report["n_excluded"] == ANCHORS  # shared with the fit
    assert report["n_anchors"] == ANCHORS and report["session_speed_ratio"] > 0
    assert 0 <= report["within_10pct"] <= 100 and report["network_mape"] >= 0


def test_report_on_the_fit_profile_excludes_its_networks(profiles, capsys) -> None:
    fit, _, predictor = profiles
    capsys.readouterr()
    assert main(["energy-report", str(predictor), "--profile", str(fit), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_networks"] == 0 and report["n_excluded"] == 8 + ANCHORS


def test_predict_prints_the_figures_and_labels_estimates(profiles, capsys) -> None:
    _, _, predictor = profiles
    capsys.readouterr()
    arch = "conv:c16k3p-c32k3p-fc64"
    assert main(["predict", str(predictor), "--arch", arch, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arch"] == arch and out["latency_ms"] > 0 and out["energy_mj"] > 0
    assert out["energy_mj"] == pytest.approx(out["latency_ms"] * out["power_w"])
    assert out["memory"]["weight_bytes_fp32"] == 4 * out["memory"]["params"]
    assert "predictor for local/onnxruntime" in out["source"]  # the local profile's runtime
    assert main(["predict", str(predictor), "--arch", arch, "--layers"]) == 0
    text = capsys.readouterr().out
    assert "latency" in text and "features.0" in text


def test_bad_inputs_get_one_line_errors(profiles, tmp_path, capsys) -> None:
    fit, _, predictor = profiles
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["predict", str(bad), "--arch", "conv:c8k3-fc16"]) == 2
    assert main(["energy-report", str(predictor), "--profile", str(tmp_path)]) == 2
    old = json.loads(predictor.read_text())
    old["format_version"] = 99
    bad.write_text(json.dumps(old))
    assert main(["predict", str(bad), "--arch", "conv:c8k3-fc16"]) == 2
    assert main(["profile", "--out", str(fit), "--threads", "7", *SMALL]) == 2
    assert main(["profile", "--out", str(tmp_path / "x"), "--repeats", "5", *SMALL]) == 2
    assert main(["profile", "--out", str(tmp_path / "y"), "--device", "nope", *SMALL]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("acnn: error:")]
    assert len(lines) == 6
    assert "version 99" in err and "threads" in err


def test_power_meter_log_turns_estimates_into_measurements(profiles, tmp_path, capsys) -> None:
    fit, _, _ = profiles
    records = [
        json.loads(x)
        for name in ("layers.jsonl", "networks.jsonl")
        for x in (fit / name).read_text().splitlines()
    ]
    start = min(r["t0"] for r in records) - 1.0
    end = max(r["t1"] for r in records) + 1.0
    log = tmp_path / "meter.csv"
    log.write_text(f"timestamp,power_w\n{start},6.0\n{end},6.0\n")  # a flat 6 W trace
    predictor = tmp_path / "measured.json"
    assert main(["fit-energy", str(fit), "--out", str(predictor), "--power-csv", str(log)]) == 0
    saved = json.loads(predictor.read_text())
    assert saved["power_source"] == "power-meter-csv" and saved["estimated"] is False
    capsys.readouterr()
    assert main(["predict", str(predictor), "--arch", "conv:c8k3-fc16", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["power_w"] == pytest.approx(6.0) and out["estimated"] is False
    short = tmp_path / "short.csv"
    short.write_text(f"timestamp,power_w\n{start},6.0\n{start + 0.5},6.0\n")
    assert main(["fit-energy", str(fit), "--out", str(predictor), "--power-csv", str(short)]) == 2
