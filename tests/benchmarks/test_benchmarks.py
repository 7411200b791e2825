"""The benchmark scripts run end to end (tiny settings, digits) and write their JSON."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_train_throughput_writes_figures(tmp_path, capsys):
    out = tmp_path / "thru.json"
    args = [
        "--dataset",
        "digits",
        "--archs",
        "conv:small",
        "c8k3p-fc16",
        "--train-steps",
        "4",
        "--warmup-steps",
        "1",
        "--repeats",
        "2",
        "--latency-runs",
        "5",
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    assert load("train_throughput").main(args) == 0
    report = json.loads(out.read_text())
    assert [r["arch"] for r in report["results"]] == ["c16k3p-c32k3p-fc64", "c8k3p-fc16"]
    for row in report["results"]:
        assert len(row["train_images_per_s"]["samples"]) == 2
        assert row["train_images_per_s"]["median"] > 0
        assert 0 < row["latency_ms_batch1"]["min"] <= row["latency_ms_batch1"]["median"]
    assert "img/s" in capsys.readouterr().out


def test_reference_accuracy_writes_table(tmp_path, capsys):
    out = tmp_path / "acc.json"
    args = [
        "--dataset",
        "digits",
        "--runs",
        "conv:small:0.5",
        "--no-cache",
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    assert load("reference_accuracy").main(args) == 0
    report = json.loads(out.read_text())
    (row,) = report["results"]
    assert row["reference"] == "small" and row["config"]["epochs"] == 0.5
    assert "| conv | small |" in report["table_markdown"]
    assert "test acc" in capsys.readouterr().out


def test_energy_model_accuracy_quick_writes_the_report(tmp_path, capsys):
    """The whole energy pipeline: two --quick profiles, fit, report, vectorised timing."""
    out = tmp_path / "energy.json"
    args = ["--quick", "--candidates", "40", "--work", str(tmp_path / "work"), "--out", str(out)]
    assert load("energy_model_accuracy").main([*args, "--outside-networks", "6"]) == 0
    result = json.loads(out.read_text())
    outside = result["outside_report"]
    assert outside["n_networks"] == 6 and outside["n_anchors"] > 0 and outside["network_mape"] > 0
    report = result["report"]
    for key in ("network_mape", "within_10pct", "flops_baseline_mape", "n_networks"):
        assert key in report
    assert report["n_networks"] == 30 and report["estimated"] in (True, False)
    assert result["vectorised"]["networks"] == 40 and result["vectorised"]["layers"] > 40
    assert "held-out networks" in capsys.readouterr().out


@pytest.mark.slow
def test_design_quality_writes_figures(design_predictor, tmp_path, capsys):
    out = tmp_path / "quality.json"
    args = [
        "--dataset",
        "digits",
        "--predictor",
        str(design_predictor),
        "--seeds",
        "0",
        "--trials",
        "3",
        "--initial-points",
        "2",
        "--candidates",
        "30",
        "--proxy-subset",
        "300",
        "--final-epochs",
        "1",
        "--threads",
        "1",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(out),
        "--quiet",
    ]
    assert load("design_quality").main(args) == 0
    report = json.loads(out.read_text())
    seed = report["seeds"][0]
    assert report["energy_source"] == "estimated"
    assert set(seed["searches"]) == {"bo", "bo-unaware", "random", "bo-joint"}
    for search in seed["searches"].values():
        assert search["evaluations"] == 3 and len(search["best_so_far"]) == 3
    assert seed["searches"]["bo"]["trained_infeasible"] == 0
    # the budget is the best single network's predicted energy / 2.5
    best = seed["singles"][seed["best_single"]]
    assert seed["budget_mj"] == pytest.approx(best["energy_mj"] / 2.5)
    design = seed["design"]
    assert seed["ratios"]["single_over_design"] == pytest.approx(
        best["energy_mj"] / design["energy_mj"]
    )
    # the iso-accuracy oracle never needs more energy than the design at its accuracy
    assert design["oracle"]["energy_mj"] <= design["energy_mj"] + 1e-9
    assert design["oracle"]["accuracy"] >= design["test_accuracy"] - 1e-12
    assert set(seed["big_little"]) == {"small/medium", "small/large", "medium/large"}
    assert "x single" in capsys.readouterr().out
    # the journals are reused as they are; other settings on them are refused in one line
    assert load("design_quality").main(args) == 0
    assert json.loads(out.read_text())["seeds"][0]["design"] == design
    capsys.readouterr()
    assert load("design_quality").main([*args, "--proxy-subset", "200"]) == 2
    assert "belongs to another search" in capsys.readouterr().err
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert load("design_quality").main(["--render", str(out)]) == 0
    assert "aware BO speed-up" in capsys.readouterr().out
    # runs of other seeds (say, in parallel processes) merge into one report
    report = json.loads(out.read_text())
    other = tmp_path / "seed7.json"
    other.write_text(json.dumps({**report, "seeds": [{**seed, "seed": 7}]}))
    merged = tmp_path / "merged.json"
    assert (
        load("design_quality").main(["--render", str(out), str(other), "--out", str(merged)]) == 0
    )
    both = json.loads(merged.read_text())
    assert [s["seed"] for s in both["seeds"]] == [seed["seed"], 7]
    assert both["settings"]["seeds"] == [seed["seed"], 7] and "summary" in both
    with pytest.raises(SystemExit, match="share a seed"):
        load("design_quality").main(["--render", str(out), str(out), "--out", str(merged)])
    # a second run resumes every search from its journal: nothing is searched again
    journals = sorted((tmp_path / "quality").rglob("journal.jsonl"))
    assert len(journals) == 4
    before = [j.read_text() for j in journals]
    assert load("design_quality").main(args) == 0
    assert [j.read_text() for j in journals] == before
    # --searches bo: only the design's search, and a summary of what ran; with the iso
    # objective it minimises energy at the iso target under the budget
    only = tmp_path / "only.json"
    extra = ["--out", str(only), "--searches", "bo", "--search-objective", "iso"]
    assert load("design_quality").main([*args[:-3], *extra]) == 0
    report = json.loads(only.read_text())
    assert set(report["seeds"][0]["searches"]) == {"bo"}
    assert set(report["summary"]["trained_infeasible"]) == {"bo"}
    assert report["summary"]["median_speedup_to_reach"] == {}
    saved = json.loads((tmp_path / "only" / "seed0" / "bo" / "config.json").read_text())
    assert saved["min_accuracy"] == pytest.approx(report["seeds"][0]["target_val_accuracy"])
    assert saved["budget_mj"] == pytest.approx(report["seeds"][0]["budget_mj"])


def test_proxy_fidelity_ranks_cached_final_networks(tmp_path, capsys):
    from adaptive_cnn.data import load_dataset
    from adaptive_cnn.training import TrainConfig, TrainingCache, train

    module = load("proxy_fidelity")
    cache_dir, out = tmp_path / "cache", tmp_path / "fidelity.json"
    args = ["--dataset", "digits", "--final-epochs", "1", "--fidelity", "300x1", "allx0.5"]
    args += ["--cache-dir", str(cache_dir), "--out", str(out), "--quiet"]
    assert module.main(args) == 2  # nothing trained at the final fidelity yet
    assert "at least 3 are needed" in capsys.readouterr().err
    data, cache = load_dataset("digits"), TrainingCache(cache_dir)
    archs = ["conv:c4k3p-fc8", "conv:c8k3p-fc16", "conv:bn-c12k3p-c16k3p-fc32"]
    finals = [train(a, data, TrainConfig(epochs=1), 0, threads=1, cache=cache) for a in archs]
    assert module.main(args) == 0
    report = json.loads(out.read_text())
    assert [n["arch"] for n in report["networks"]] == sorted(archs)
    by_arch = {f.arch: f.val_accuracy for f in finals}
    assert report["final"]["val_accuracy"] == [by_arch[a.split(":", 1)[1]] for a in sorted(archs)]
    assert [f["fidelity"] for f in report["fidelities"]] == ["300x1", "allx0.5"]
    for f in report["fidelities"]:
        assert f["networks"] == 3 and f["cache_hits"] == 0
        assert -1 <= f["spearman"] <= 1 and 0 <= f["top_k_overlap"] <= f["top_k"] == 3
    assert module.main(args) == 0  # again: every proxy training comes from the cache
    assert all(f["cache_hits"] == 3 for f in json.loads(out.read_text())["fidelities"])
    with pytest.raises(SystemExit):
        module.parse_args(["--fidelity", "4000"])


@pytest.mark.slow
def test_runtime_gain_measures_both_pricings_in_both_runtimes(tmp_path, make_predictor, capsys):
    predictors = []
    for runtime in ("torch", "onnxruntime"):
        path = make_predictor(runtime=runtime).save(tmp_path / f"{runtime}.json")
        predictors += ["--predictor", f"{runtime}={path}"]
    flags = (
        "--dataset digits --budget 400mJ --link none --trials 2 --initial-points 2 "
        "--candidates 40 --proxy-epochs 1 --proxy-subset 300 --final-epochs 1 --rerank 1 "
        "--threads 1"
    )
    out = tmp_path / "gain.json"
    args = [
        "--design-args", flags, *predictors, "--images", "24", "--rounds", "2",
        "--work", str(tmp_path / "work"), "--cache-dir", str(tmp_path / "cache"),
        "--out", str(out),
    ]  # fmt: skip
    assert load("runtime_gain").main(args) == 0
    result = json.loads(out.read_text())
    assert result["pricing"]["torch"]["runtime"] == "torch"
    assert result["pricing"]["onnxruntime"]["runtime"] == "onnxruntime"
    systems = {(r["priced_for"], r["system"]) for r in result["rows"]}
    for priced in ("torch", "onnxruntime"):
        assert {(priced, s) for s in ("design", "single:small", "big/little")} <= systems
    for row in result["rows"]:
        assert set(row["measured_mj_per_image"]) == {"torch", "onnxruntime"}
        assert all(v > 0 for v in row["measured_mj_per_image"].values())
        assert len(row["chunk_latency_ms"]["torch"]) == 2  # one figure per round
        assert row["energy"]["label"] == "estimated from latency x declared power"
    assert result["gain"]["energy_ratio"] > 0
    assert result["images"] == 24
    printed = capsys.readouterr().out
    assert "measured mJ in onnxruntime" in printed and "estimated" in printed
    # a second run reuses the finished designs and re-renders the same table
    assert load("runtime_gain").main([*args[:-1], str(tmp_path / "again.json")]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert [r["stages"] for r in again["rows"]] == [r["stages"] for r in result["rows"]]
    assert load("runtime_gain").main(["--render", str(out)]) == 0
