"""The shared reproduction framework: registry, result writer, ``acnn reproduce``."""

from __future__ import annotations

import json

import pytest

from adaptive_cnn.cli.main import main
from adaptive_cnn.reproduce import (
    Experiment,
    ReproduceError,
    ResultWriter,
    get_experiment,
    list_experiments,
    registry,
)


def test_registry_lists_and_fails_loudly():
    names = [e.name for e in list_experiments()]
    assert {"neuralpower", "offload"} <= set(names) and names == sorted(names)
    with pytest.raises(ReproduceError, match="known: .*neuralpower"):
        get_experiment("nope")
    with pytest.raises(ValueError, match="twice"):
        registry.register_experiment(get_experiment("offload"))


def test_list_prints_every_experiment(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for e in list_experiments():
        assert e.name in out and e.title in out


def test_no_experiment_is_a_one_line_error(capsys):
    assert main(["reproduce"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--list" in err


def test_unknown_experiment_is_a_usage_error(capsys):
    assert main(["reproduce", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("acnn: error:") and err.count("\n") == 1
    assert "invalid choice: 'nope'" in err


def test_help_names_units(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "offload", "--help"])
    text = capsys.readouterr().out
    assert "Mbit/s" in text and "ms" in text and "--quick" in text


def test_writer_writes_atomically_and_records_the_run(tmp_path):
    writer = ResultWriter(tmp_path / "out", "demo", {"path": tmp_path, "n": 3}, ["acnn", "x"])
    writer.start()
    running = json.loads((tmp_path / "out" / "config.json").read_text())
    assert running["status"] == "running" and running["wall_seconds"] is None
    writer.write_json("a.json", {"x": float("nan"), "y": [1, 2]})
    writer.write_csv("b.csv", [{"k": 1, "v": "one"}, {"k": 2, "v": "two"}])
    writer.resolve(extra="resolved")
    writer.finish({"figure": 1.5})
    out = tmp_path / "out"
    assert json.loads((out / "a.json").read_text()) == {"x": None, "y": [1, 2]}
    assert (out / "b.csv").read_text() == "k,v\n1,one\n2,two\n"
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "finished" and config["summary"] == {"figure": 1.5}
    assert config["options"] == {"path": str(tmp_path), "n": 3, "extra": "resolved"}
    assert config["files"] == ["a.json", "b.csv"]
    assert config["versions"]["acnn"] and "python" in config["machine"]
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "b.csv", "config.json"]


def test_a_failing_write_keeps_the_earlier_file(tmp_path):
    writer = ResultWriter(tmp_path, "demo", {})
    writer.write_text("table.md", "finished\n")

    def broken(_path):
        raise OSError("disk full")

    with pytest.raises(OSError):
        writer._commit("table.md", broken)
    assert (tmp_path / "table.md").read_text() == "finished\n"
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_failing_experiment_keeps_finished_files(tmp_path, monkeypatch, capsys):
    def run(args, out):
        out.write_text("raw.csv", "a\n1\n")
        raise ReproduceError("the input vanished")

    fake = Experiment("zz-fails", "fails half-way", "none", lambda p: None, run)
    monkeypatch.setitem(registry._EXPERIMENTS, fake.name, fake)
    code = main(["reproduce", "zz-fails", "--quiet", "--out", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err.strip() == "acnn: error: the input vanished"
    assert (tmp_path / "raw.csv").read_text() == "a\n1\n"
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["status"] == "failed" and "the input vanished" in config["error"]
    assert config["files"] == ["raw.csv"]
