"""The README's reproduction block is generated from the result folders, never typed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adaptive_cnn.cli.main import main
from adaptive_cnn.reproduce import ReproduceError
from adaptive_cnn.reproduce.readme import BEGIN, END, render_block, replace_block

ROOT = Path(__file__).resolve().parents[3]

NEURALPOWER = {
    "energy_label": "estimated",
    "runtime_accuracy_pct": 91.5,
    "power_accuracy_pct": 100.0,
    "energy_accuracy_pct": 91.5,
    "flops_runtime_accuracy_pct": 20.25,
}


def _finished(folder: Path, summary: dict, *, quick: bool = False, wall: float = 4.2) -> None:
    folder.mkdir(parents=True)
    record = {"status": "finished", "options": {"quick": quick}, "wall_seconds": wall}
    (folder / "config.json").write_text(json.dumps({**record, "summary": summary}))


def test_block_rows_come_from_finished_full_runs(tmp_path):
    _finished(tmp_path / "neuralpower", NEURALPOWER)
    _finished(tmp_path / "hyperpower", {"seeds": 1}, quick=True)  # quick: not shown
    adaptive = {"seeds": 2, "median_reduction_vs_big_little": 1.07}
    _finished(tmp_path / "adaptive", adaptive, wall=5400)
    block = render_block(tmp_path, "res")
    rows = {line.split(" | ")[0].strip("| "): line for line in block.splitlines()}
    assert "runtime 91.50% (FLOPs baseline 20.25%)" in rows["neuralpower"]
    assert "not tested" in rows["neuralpower"] and "| 4 s |" in rows["neuralpower"]
    assert "not yet run" in rows["hyperpower"] and "not yet run" in rows["single-path"]
    assert "1.07× less energy than the best big/little" in rows["adaptive"]
    assert "(largest –)" in rows["adaptive"] and "| 90 min |" in rows["adaptive"]
    assert "res/adaptive/plane.png" not in block  # no plot file yet
    (tmp_path / "adaptive" / "plane.png").write_bytes(b"png")
    assert "](res/adaptive/plane.png)" in render_block(tmp_path, "res")


def test_update_readme_rewrites_only_the_block(tmp_path, monkeypatch, capsys):
    _finished(tmp_path / "results" / "neuralpower", NEURALPOWER)
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{BEGIN}\nold hand-typed table\n{END}\nafter\n")
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "--update-readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# title\n\nbefore\n") and text.endswith(f"{END}\nafter\n")
    assert "old hand-typed" not in text and "runtime 91.50%" in text
    assert main(["reproduce", "--update-readme", str(readme)]) == 0
    assert "already up to date" in capsys.readouterr().out
    readme.write_text("no markers\n")
    assert main(["reproduce", "--update-readme", str(readme)]) == 2
    assert "exactly one" in capsys.readouterr().err
    assert readme.read_text() == "no markers\n"  # nothing lost


def test_replace_block_refuses_missing_or_repeated_markers():
    with pytest.raises(ReproduceError):
        replace_block(f"{END}\n{BEGIN}\n", "x")
    with pytest.raises(ReproduceError):
        replace_block(f"{BEGIN}\n{END}\n{BEGIN}\n{END}\n", "x")


def test_committed_readme_matches_the_committed_results():
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    assert readme[start:end] == render_block(ROOT / "results", "results"), (
        "README's reproduction block is stale: run acnn reproduce --update-readme"
    )
