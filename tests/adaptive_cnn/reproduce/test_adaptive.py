"""``acnn reproduce adaptive --quick`` end to end on digits (one seed, tiny searches)."""

from __future__ import annotations

import csv
import json

import pytest

from adaptive_cnn.cli.main import main
from adaptive_cnn.reproduce.adaptive_report import MARKERS, plot_plane


def _run(root, predictor, *extra):
    return main(
        ["reproduce", "adaptive", "--quick", "--quiet", "--predictor", predictor,
         "--cache-dir", str(root / "cache"), "--out", str(root / "out"), *extra]
    )  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory, reproduce_predictor):
    root = tmp_path_factory.mktemp("adaptive")
    return _run(root, reproduce_predictor), root


def test_quick_run_writes_every_file(finished):
    code, root = finished
    out = root / "out"
    assert code == 0
    for name in ("config.json", "results.json", "systems.csv", "table.md"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "plane.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "finished" and config["summary"]["energy_label"] == "estimated"
    assert config["options"]["settings"]["dataset"] == "digits"
    for name in ("bo", "bo-3stages"):  # the searches journal under OUT/searches by default
        journal = out / "searches" / "seed0" / name / "journal.jsonl"
        assert len(journal.read_text().splitlines()) == 3


def test_every_system_is_present_and_labelled_estimated(finished):
    results = json.loads((finished[1] / "out" / "results.json").read_text())
    systems = {r["system"]: r for r in results["seeds"][0]["systems"]}
    assert {"single small", "single medium", "single large"} <= set(systems)
    assert {"big/little small/medium", "big/little small/large", "big/little medium/large"} <= set(
        systems
    )
    for link in ("wifi", "lte", "3g"):
        assert systems[f"all-cloud {link}"]["offload_rate"] == 1.0
        for n in (2, 3):
            assert systems[f"acnn {n} stages + cloud {link}"]["stages"][-1].startswith("cloud:")
    # the search proposes 3 stages; the final combination may keep fewer when that is better
    assert 1 <= len(systems["acnn 3 stages"]["stages"]) <= 3
    table = (finished[1] / "out" / "table.md").read_text()
    assert "ESTIMATED" in table and "energy mJ (estimated)" in table
    assert "3g from links.yaml" in results["energy_note"]  # the local profile lacks 3g


def test_ratios_follow_the_iso_rule(finished):
    """Recomputed by hand from the rows: the cheapest big/little pair whose test accuracy is
    within 0.5 points of the best single's, divided by the system's energy."""
    seed = json.loads((finished[1] / "out" / "results.json").read_text())["seeds"][0]
    ref, rows = seed["reference_test_accuracy"], seed["systems"]
    iso = [r for r in rows if r["test_accuracy"] >= ref - 0.005 - 1e-12]
    pairs = [r["energy_mj"] for r in iso if r["kind"] == "big-little"]
    for r in rows:
        assert r["iso"] == (r in iso)
        if r in iso and pairs:
            assert r["x_vs_best_big_little"] == pytest.approx(min(pairs) / r["energy_mj"])
        else:
            assert r["x_vs_best_big_little"] is None
        if "oracle" in r:  # the oracle at the system's own accuracy is never dearer
            assert r["oracle"]["energy_mj"] <= r["energy_mj"] + 1e-9
    design_ratios = [
        r["x_vs_best_big_little"] for r in rows if r["kind"] in ("acnn", "local+cloud")
    ]
    best = max((x for x in design_ratios if x is not None), default=None)
    assert seed["headline"]["reduction_vs_big_little"] == best


def test_plane_figure_structure(finished):
    results = json.loads((finished[1] / "out" / "results.json").read_text())
    fig = plot_plane(results)
    try:
        ax = fig.axes[0]
        assert ax.get_xscale() == "log" and "estimated" in ax.get_xlabel()
        labels = {t.get_text() for t in ax.get_legend().get_texts()}
        assert {m[2] for m in MARKERS.values()} <= labels
        points = [line for line in ax.get_lines() if line.get_linestyle() == "None"]
        n_oracle = sum("oracle" in r for r in results["seeds"][0]["systems"])
        assert len(points) == len(results["seeds"][0]["systems"]) + n_oracle
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    with (finished[1] / "out" / "systems.csv").open() as f:
        assert len(list(csv.DictReader(f))) == len(results["seeds"][0]["systems"])


def test_rerun_reuses_the_journals_and_refuses_other_settings(
    finished, reproduce_predictor, capsys
):
    code, root = finished
    searches = root / "out" / "searches"
    # other proxy settings on the same journal root: refused in one line, exit 2
    bad = _run(root, reproduce_predictor, "--run-dir", str(searches), "--proxy-subset", "200")
    err = capsys.readouterr().err.strip()
    assert bad == 2 and len(err.splitlines()) == 1
    assert "belongs to another search" in err and "proxy_subset 300" in err


def test_bad_stages_is_a_one_line_error(tmp_path, reproduce_predictor, capsys):
    assert _run(tmp_path, reproduce_predictor, "--stages", "4") == 2
    assert "--stages" in capsys.readouterr().err
