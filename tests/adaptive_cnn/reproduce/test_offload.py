"""``acnn reproduce offload --quick`` end to end on a hand-made digits design."""

from __future__ import annotations

import csv
import json

import pytest

from adaptive_cnn.cli.main import main
from adaptive_cnn.reproduce import offload_model as om
from adaptive_cnn.reproduce.offload_report import plot_sweeps


def _run(run_dir, out, *extra):
    return main(
        [
            "reproduce",
            "offload",
            "--quick",
            "--quiet",
            "--run-dir",
            str(run_dir),
            "--out",
            str(out),
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory, make_hand_run):
    root = tmp_path_factory.mktemp("offload")
    run_dir = make_hand_run(root / "run")
    code = _run(run_dir, root / "out", "--points", "9")
    return code, root / "out"


def test_quick_run_writes_every_file(finished):
    code, out = finished
    assert code == 0
    for name in ("config.json", "results.json", "sweep.csv", "crossings.csv", "table.md"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "energy_vs_link.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "finished" and config["wall_seconds"] > 0
    assert config["options"]["points"] == 9
    assert config["options"]["link"]["name"] == "custom"
    assert config["summary"]["energy_label"] == "estimated"


def test_sweep_has_every_strategy_at_every_setting(finished):
    with (finished[1] / "sweep.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 9 * len(om.STRATEGIES)
    cloud = [r for r in rows if r["strategy"] == om.ALL_CLOUD]
    for r in cloud:  # E_cloud = 0.8 / B + 0.1 * R, the other number at its nominal value
        b = float(r["value"]) if r["parameter"] == "uplink_mbps" else 1.0
        rtt = float(r["value"]) if r["parameter"] == "rtt_ms" else 10.0
        assert float(r["energy_mj"]) == pytest.approx(0.8 / b + 0.1 * rtt)
        assert float(r["offload_rate"]) == 1.0


def test_crossovers_match_the_hand_worked_link(finished):
    results = json.loads((finished[1] / "results.json").read_text())
    closed = {
        (r["sweep"], r["b"]): r["value"] for r in results["closed_form"] if r["b"] == om.ALL_LOCAL
    }
    assert closed[("uplink_mbps", om.ALL_LOCAL)] == pytest.approx(0.8 / 3)
    assert closed[("rtt_ms", om.ALL_LOCAL)] == pytest.approx(32.0)
    grid = {(r["sweep"], r["a"], r["b"]): r for r in results["crossings"] if r["value"] is not None}
    bw = grid[("uplink_mbps", om.ALL_CLOUD, om.ALL_LOCAL)]
    assert bw["value"] == pytest.approx(0.8 / 3, rel=0.15)
    rtt = grid[("rtt_ms", om.ALL_CLOUD, om.ALL_LOCAL)]
    assert rtt["value"] == pytest.approx(32.0, rel=0.15)
    assert "above" in bw["finding"] and "below" in rtt["finding"]


def test_table_labels_energies_estimated(finished):
    table = (finished[1] / "table.md").read_text()
    assert "ESTIMATED" in table and "energies estimated" in table
    for strategy in om.STRATEGIES:
        assert f"| {strategy} |" in table


def test_figure_structure(finished):
    with (finished[1] / "sweep.csv").open() as f:
        rows = [
            {
                **r,
                "value": float(r["value"]),
                "energy_mj": float(r["energy_mj"]),
                "offload_rate": float(r["offload_rate"]),
            }
            for r in csv.DictReader(f)
        ]
    results = json.loads((finished[1] / "results.json").read_text())
    grids = {p: sorted({r["value"] for r in rows if r["parameter"] == p}) for p in om.SWEEPS}
    from energy_models.communication import LinkModel

    fig = plot_sweeps(rows, grids, LinkModel.from_dict(results["link"]), results["crossings"])
    try:
        energy_axes = fig.axes[:2]
        for ax in energy_axes:
            assert ax.get_xscale() == "log"
            labels = [line.get_label() for line in ax.get_lines()]
            assert set(om.STRATEGIES) <= set(labels)
            assert "estimated" in ax.get_ylabel()
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_missing_run_folder_is_a_one_line_error(tmp_path, capsys):
    assert _run(tmp_path / "nowhere", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is not a folder" in err


def test_corrupt_result_json_is_a_one_line_error(tmp_path, capsys, make_hand_run):
    run_dir = make_hand_run(tmp_path / "run")
    (run_dir / "result.json").write_text('{"stages": [')
    assert _run(run_dir, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not valid JSON" in err


def test_design_without_cloud_is_refused(tmp_path, capsys, make_hand_run):
    run_dir = make_hand_run(tmp_path / "run")
    summary = json.loads((run_dir / "result.json").read_text())
    summary["stages"] = summary["stages"][:2]
    summary["policy"]["thresholds"] = [0.05]
    (run_dir / "result.json").write_text(json.dumps(summary))
    assert _run(run_dir, tmp_path / "out") == 2
    assert "no cloud stage" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--bandwidth", "10:1"], ["--rtt", "abc"], ["--points", "1"]])
def test_bad_grid_is_a_one_line_error(tmp_path, capsys, flag, make_hand_run):
    run_dir = make_hand_run(tmp_path / "run")
    assert _run(run_dir, tmp_path / "out", *flag) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("acnn: error:")
