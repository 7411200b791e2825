"""``acnn reproduce neuralpower --quick`` end to end on synthetic profiles, and its tables."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from adaptive_cnn.cli.main import main
from adaptive_cnn.reproduce.neuralpower import (
    PAPER_ACCURACY_PCT,
    paper_type_rows,
    plot_networks,
)


@pytest.fixture(scope="module")
def finished(profiles, tmp_path_factory):
    fit, held = profiles
    out = tmp_path_factory.mktemp("np") / "out"
    argv = ["reproduce", "neuralpower", "--quick", "--quiet", "--out", str(out)]
    code = main([*argv, "--fit-profile", str(fit), "--heldout-profile", str(held)])
    return code, out


def test_quick_run_writes_every_file(finished):
    code, out = finished
    assert code == 0
    for name in ("config.json", "results.json", "networks.csv", "layers.csv", "table.md"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "predicted_vs_measured.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*.tmp"))


def test_config_records_options_machine_versions_and_wall_time(finished, profiles):
    config = json.loads((finished[1] / "config.json").read_text())
    assert config["status"] == "finished"
    assert config["experiment"] == "neuralpower"
    assert config["options"]["quick"] is True
    assert config["options"]["fit_profile"] == str(profiles[0])
    assert config["wall_seconds"] > 0
    assert config["machine"]["logical_cpus"] >= 1
    assert config["versions"]["numpy"] == np.__version__
    assert "predicted_vs_measured.png" in config["files"]
    assert config["summary"]["energy_label"] == "estimated"


def test_network_accuracy_is_100_minus_rmspe_of_the_rows(finished):
    """A second computation of the headline from networks.csv, by hand."""
    out = finished[1]
    with (out / "networks.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12  # every held-out network (none was in the fit)
    measured = np.array([float(r["measured_latency_ms"]) for r in rows])
    predicted = np.array([float(r["predicted_latency_ms"]) for r in rows])
    rmspe = 100 * math.sqrt(np.mean(((predicted - measured) / measured) ** 2))
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert summary["runtime_accuracy_pct"] == pytest.approx(100 - rmspe, rel=1e-9)
    # the synthetic law is layer-additive, so the layer-wise model beats FLOPs
    assert summary["runtime_accuracy_pct"] > summary["flops_runtime_accuracy_pct"]


def test_table_labels_power_estimated_and_shows_the_paper(finished):
    table = (finished[1] / "table.md").read_text()
    assert "ESTIMATED" in table
    assert "power (estimated)" in table and "energy (estimated)" in table
    for value in PAPER_ACCURACY_PCT.values():
        assert f"{value:.2f}%" in table
    assert "| convolutional |" in table


def test_paper_types_pool_rmspe_exactly():
    """Kinds with n=1 at 3% and n=3 at 1% pool to sqrt((9 + 3) / 4) = sqrt(3)%."""
    rows = [
        {"kind": "conv2d", "n": 1, "runtime_rmspe": 3.0, "power_rmspe": 0.0},
        {"kind": "conv2d_depthwise", "n": 3, "runtime_rmspe": 1.0, "power_rmspe": 2.0},
    ]
    for r in rows:
        r |= {"runtime_terms": 2, "power_terms": 1, "cv_runtime_rmspe": 0.0}
    (conv,) = paper_type_rows({"layers": rows, "cross_validated_layers": []})
    assert conv["type"] == "convolutional" and conv["configs"] == 4
    assert conv["runtime_rmspe_pct"] == pytest.approx(math.sqrt(3))
    assert conv["power_rmspe_pct"] == pytest.approx(math.sqrt(12 / 4))
    assert conv["runtime_terms"] == 4


def test_figure_has_three_log_log_panels(finished):
    with (finished[1] / "networks.csv").open() as f:
        rows = [
            {
                k: float(v) if k.startswith(("measured", "predicted", "flops")) else v
                for k, v in r.items()
            }
            for r in csv.DictReader(f)
        ]
    fig = plot_networks(rows, "estimated")
    try:
        assert len(fig.axes) == 3
        for ax in fig.axes:
            assert ax.get_xscale() == ax.get_yscale() == "log"
            assert len(ax.collections) == 2  # layer-wise and FLOPs points
            assert all(len(c.get_offsets()) == len(rows) for c in ax.collections)
        assert "estimated" in fig.axes[1].get_title()
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_missing_profile_is_a_one_line_error(tmp_path, capsys, profiles):
    code = main(
        [
            "reproduce",
            "neuralpower",
            "--quiet",
            "--out",
            str(tmp_path / "out"),
            "--fit-profile",
            str(tmp_path / "nowhere"),
            "--heldout-profile",
            str(profiles[1]),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "not a profile directory" in err
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["status"] == "failed"


def test_corrupt_profile_is_a_one_line_error(tmp_path, capsys, profiles):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "profile.json").write_text("{not json")
    code = main(
        [
            "reproduce",
            "neuralpower",
            "--quiet",
            "--out",
            str(tmp_path / "out"),
            "--fit-profile",
            str(profiles[0]),
            "--heldout-profile",
            str(broken),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "not valid JSON" in err


def test_missing_default_profiles_are_taken_first(tmp_path, monkeypatch, profile_writer):
    """On a fresh machine the default folders are profiled (take_profile, faked here)."""
    import adaptive_cnn.profiling as profiling
    from adaptive_cnn.reproduce import neuralpower

    calls, kinds = [], {}

    def fake_take_profile(request, progress=None):
        calls.append(request)
        out = Path(request.out)
        if request.seed == 1:  # the held-out profile: other networks, kinds the fit saw
            profile_writer(out, seed=1, n_networks=12, kinds=kinds["fit"])
        else:
            kinds["fit"] = profile_writer(out, seed=0, n_networks=40)

    monkeypatch.setattr(neuralpower, "profiles_dir", lambda: tmp_path / "profiles")
    monkeypatch.setattr(profiling, "take_profile", fake_take_profile)
    code = main(["reproduce", "neuralpower", "--quick", "--quiet", "--out", str(tmp_path / "o")])
    assert code == 0
    assert [(c.runtime, c.quick) for c in calls] == [("torch", True)] * 2
    assert str(calls[0].out).endswith("fit-torch-quick")
    held = calls[1]
    assert held.seed == 1 and held.size.max_layers == 60
    # a second run finds them and profiles nothing
    assert (
        main(["reproduce", "neuralpower", "--quick", "--quiet", "--out", str(tmp_path / "p")]) == 0
    )
    assert len(calls) == 2
