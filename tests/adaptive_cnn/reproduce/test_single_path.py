"""``acnn reproduce single-path``: --quick end to end, and --from a benchmark JSON."""

from __future__ import annotations

import json

import pytest

from adaptive_cnn.cli.main import main
from adaptive_cnn.reproduce.single_path_report import plot_cost

FILES = ("config.json", "results.json", "methods.csv", "table.md")


def _run(out, *extra):
    return main(["reproduce", "single-path", "--quiet", "--out", str(out), *extra])


def _row(method, energy, accuracy, epochs, search_s, wall_s):
    return {"method": method, "arch": f"mbconv:{method}", "energy_mj": energy,
            "energy_label": "estimated", "test_accuracy": accuracy, "val_accuracy": accuracy,
            "search_epochs": epochs, "search_seconds": search_s, "wall_seconds": wall_s,
            "config": {}}  # fmt: skip


@pytest.fixture
def bench_json(tmp_path):
    """A made-up benchmarks/single_path_cost.py result: single-path 40 s, BO 400 s."""
    path = tmp_path / "single_path_cost.json"
    rows = [_row("single-path", 1.8, 0.90, 8, 30.0, 40.0), _row("bo", 1.9, 0.89, 20, 350.0, 400.0)]
    path.write_text(json.dumps({"settings": {"budget": "2mJ", "dataset": "fashion-mnist"},
                                "seed": 0, "results": rows}))  # fmt: skip
    return path


def test_from_json_trains_nothing_and_recomputes_the_verdict(bench_json, tmp_path):
    out = tmp_path / "out"
    assert _run(out, "--from", str(bench_json)) == 0
    for name in FILES:
        assert (out / name).stat().st_size > 0, name
    assert (out / "search_cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((out / "config.json").read_text())
    # 40 / 400 = 0.1 <= 0.2, and 0.90 >= 0.89 at 1.8 <= 1.9 mJ: met
    assert config["summary"]["wall_ratio_single_path_over_bo"] == pytest.approx(0.1)
    assert config["summary"]["target_met"] is True
    table = (out / "table.md").read_text()
    assert "ESTIMATED" in table and "**0.100**" in table and "search-epoch ratio: 0.400" in table


def test_cost_figure_structure(bench_json, tmp_path):
    assert _run(tmp_path / "out", "--from", str(bench_json)) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    fig = plot_cost(results)
    try:
        bars, plane = fig.axes
        heights = [p.get_height() for p in bars.patches]
        assert heights == [30.0, 350.0, 40.0, 400.0]  # search s of both, then wall s
        assert [t.get_text() for t in bars.get_xticklabels()] == ["single-path", "bo"]
        assert len(plane.get_lines()) == 2 and "estimated" in plane.get_xlabel()
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


@pytest.mark.parametrize(
    "content, message",
    [("{not json", "not valid JSON"), ('{"results": []}', "expected results for")],
)
def test_bad_from_json_is_a_one_line_error(tmp_path, capsys, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert _run(tmp_path / "out", "--from", str(path)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_quick_runs_both_methods(tmp_path, reproduce_predictor):
    out = tmp_path / "out"
    assert _run(out, "--quick", "--predictor", reproduce_predictor, "--budget", "60mJ") == 0
    results = json.loads((out / "results.json").read_text())
    sp, bo = results["results"]
    assert (sp["method"], bo["method"]) == ("single-path", "bo")
    assert bo["search_epochs"] == 3  # 3 trials x 1 proxy epoch (the quick settings)
    for r in (sp, bo):
        assert r["arch"].startswith("mbconv:") and r["energy_mj"] <= 60.0
        assert r["energy_label"] == "estimated"
        assert r["wall_seconds"] > r["search_seconds"] > 0
    assert results["verdict"]["wall_ratio"] == sp["wall_seconds"] / bo["wall_seconds"]
    for name in FILES:
        assert (out / name).stat().st_size > 0, name


def test_work_folder_with_an_earlier_run_is_refused(tmp_path, reproduce_predictor, capsys):
    (tmp_path / "work" / "bo").mkdir(parents=True)
    (tmp_path / "work" / "bo" / "run").mkdir()
    code = _run(tmp_path / "out", "--quick", "--predictor", reproduce_predictor,
                "--work", str(tmp_path / "work"))  # fmt: skip
    assert code == 2 and "holds an earlier run" in capsys.readouterr().err
