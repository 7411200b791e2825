"""``acnn reproduce hyperpower --quick`` end to end on digits, then read-only reuse."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from adaptive_cnn.cli.main import main
from adaptive_cnn.reproduce.hyperpower import STRATEGIES
from adaptive_cnn.reproduce.hyperpower_report import plot_curves


def _run(root, predictor, out, *extra):
    return main(
        ["reproduce", "hyperpower", "--quick", "--quiet", "--predictor", predictor,
         "--cache-dir", str(root / "cache"), "--out", str(out), *extra]
    )  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory, reproduce_predictor):
    root = tmp_path_factory.mktemp("hyperpower")
    return _run(root, reproduce_predictor, root / "out"), root


def test_quick_run_writes_every_file(finished):
    code, root = finished
    out = root / "out"
    assert code == 0
    for name in ("config.json", "results.json", "evaluations.csv", "table.md"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "search_efficiency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((out / "results.json").read_text())
    assert [s["seed"] for s in results["seeds"]] == [0, 1, 2]  # >= 3 seeds, also quick
    for s in results["seeds"]:
        assert s["searched"] == list(STRATEGIES)
        for name in STRATEGIES:
            assert s["strategies"][name]["evaluations"] == 3
        assert s["strategies"]["bo"]["trained_infeasible"] == 0  # aware: screened first
    with (out / "evaluations.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 3 * 3 * 3
    table = (out / "table.md").read_text()
    assert "ESTIMATED" in table and "30.12" in table and "57.2" in table


def test_summary_matches_the_per_seed_figures(finished):
    results = json.loads((finished[1] / "out" / "results.json").read_text())
    for name in STRATEGIES:
        per_seed = [s["strategies"][name]["trained_infeasible"] for s in results["seeds"]]
        assert results["summary"]["strategies"][name]["trained_infeasible_total"] == sum(per_seed)
        errors = [s["strategies"][name]["best_error"] for s in results["seeds"]]
        stats = results["summary"]["strategies"][name]["best_error"]
        assert stats["mean"] == pytest.approx(sum(errors) / 3)
        assert (stats["min"], stats["max"]) == (min(errors), max(errors))


def test_figure_has_two_panels_with_a_line_and_band_per_strategy(finished):
    results = json.loads((finished[1] / "out" / "results.json").read_text())
    fig = plot_curves(results)
    try:
        by_eval, by_time = fig.axes
        assert "evaluations" in by_eval.get_xlabel() and "seconds" in by_time.get_xlabel()
        for ax in (by_eval, by_time):
            assert len(ax.get_lines()) == len(STRATEGIES)
            assert len(ax.collections) == len(STRATEGIES)  # the min-max bands
            labels = {t.get_text() for t in ax.get_legend().get_texts()}
            assert labels == {"constraint-aware BO", "constraint-unaware BO", "random search"}
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_complete_journals_are_only_read(finished, reproduce_predictor, monkeypatch, tmp_path):
    code, root = finished

    def no_training(*args, **kwargs):
        raise AssertionError("the journals were complete: nothing may be trained")

    monkeypatch.setattr("adaptive_cnn.training.trainer._train_uncached", no_training)
    searches = root / "out" / "searches"
    again = tmp_path / "again"
    assert _run(root, reproduce_predictor, again, "--run-dir", str(searches)) == 0
    results = json.loads((again / "results.json").read_text())
    assert all(s["searched"] == [] for s in results["seeds"])
    first = json.loads((root / "out" / "results.json").read_text())
    assert results["summary"] == first["summary"]


def test_journals_of_another_dataset_are_refused(finished, reproduce_predictor, tmp_path, capsys):
    code, root = finished
    other = tmp_path / "other"
    shutil.copytree(root / "out" / "searches", other)
    path = other / "seed0" / "random" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "dataset": "fashion-mnist"}))
    assert _run(root, reproduce_predictor, tmp_path / "o", "--run-dir", str(other)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "seed0/random belongs to another search: dataset 'fashion-mnist'" in err


def test_journals_of_another_predictor_are_refused(finished, predictor_writer, tmp_path, capsys):
    code, root = finished
    doubled = predictor_writer(tmp_path / "double.json", power_w=20.0)  # every energy x2
    out = tmp_path / "o"
    # the budget comes from the journals, so only the predicted energies can tell
    assert _run(root, doubled, out, "--run-dir", str(root / "out" / "searches")) == 2
    assert "made with another predictor" in capsys.readouterr().err


def test_bad_budget_is_a_one_line_error(tmp_path, reproduce_predictor, capsys):
    assert _run(tmp_path, reproduce_predictor, tmp_path / "o", "--budget", "lots") == 2
    assert "--budget" in capsys.readouterr().err
