"""``acnn design`` and ``acnn report`` as commands: one-line errors and exit codes, --help,
--json, --resume with flags, and the run folder the command refuses to overwrite.

What a design does (journal, resume, re-ranking, baselines, executors, time budget, the
single-path method) is tested through the API in tests/adaptive_cnn/design and
tests/adaptive_cnn/single_path.
"""

from __future__ import annotations

import json

import pytest

from adaptive_cnn.cli.main import main


@pytest.fixture(scope="module")
def sp_predictor(make_predictor, tmp_path_factory) -> str:
    """The single-path tests' predictor file (tests/adaptive_cnn/single_path/conftest.py):
    closed-form, power growing with channels, a network model that inflates and knees."""
    from energy_models.features import CALL_GROUPS
    from energy_models.predictor import NetworkModel

    scale = {g: 1.0 + 0.1 * i for i, g in enumerate(CALL_GROUPS)}
    per_call = {g: 0.002 * (i + 1) for i, g in enumerate(CALL_GROUPS)}
    predictor = make_predictor(
        10.0,
        runtime_ms=(("1", "macs", "out_elements"), (0.001, 1e-6, 1e-7)),
        power=(("1", "c_out"), (10.0, 0.01)),
        network=NetworkModel(scale, 0.05, 0.3, per_call, 0.5, 7.0),
    )
    return str(predictor.save(tmp_path_factory.mktemp("sp-pred") / "predictor.json"))


def _single_path_args(predictor_file, tmp_path, *extra):
    return [
        "design",
        "--method",
        "single-path",
        "--dataset",
        "digits",
        "--predictor",
        predictor_file,
        "--out",
        str(tmp_path / "run"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--link",
        "none",
        "--stages",
        "1",
        "--search-epochs",
        "2",
        "--warmup-epochs",
        "1",
        "--proxy-subset",
        "256",
        "--lambda-trials",
        "2",
        "--final-epochs",
        "1",
        "--threads",
        "1",
        "--no-baselines",
        "--quiet",
        *extra,
    ]


def test_json_prints_the_result_report_reads_the_run_and_resume_takes_its_flags(
    design_predictor, design_args, tmp_path, capsys
):
    out, cache = tmp_path / "run", tmp_path / "cache"
    args = design_args(design_predictor, out, cache, "--json", baselines=True)
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "result.json").read_text())
    assert printed == {k: v for k, v in saved.items() if k != "format_version"}
    assert printed["evaluations"] == 3
    assert main(["report", str(out)]) == 0
    report = capsys.readouterr().out
    assert "best feasible validation accuracy by evaluation: 1:" in report
    for plot in ("search.png", "plane.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # --resume RUN with the flags the run was started with: they match its journal
    assert main([*args, "--resume", str(out)]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["evaluations"] == 3 and resumed["stages"] == printed["stages"]
    # --resume RUN alone: the run's saved settings
    resume = ["design", "--resume", str(out), "--cache-dir", str(cache), "--quiet", "--json"]
    assert main(resume) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["evaluations"] == 3 and resumed["stages"] == printed["stages"]


def test_impossible_budget_is_a_one_line_error(
    design_predictor, design_args, tmp_path, capsys
) -> None:
    code = main(
        design_args(design_predictor, tmp_path / "run", tmp_path / "cache", "--budget", "1nJ")
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("acnn: error: no design can meet")


def test_report_needs_a_finished_run(tmp_path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "has not finished" in capsys.readouterr().err


def test_a_finished_run_folder_is_not_overwritten(
    design_predictor, design_args, tmp_path, capsys
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "journal.jsonl").write_text("")
    assert main(design_args(design_predictor, out, tmp_path / "cache", "--budget", "1mJ")) == 2
    assert "--resume" in capsys.readouterr().err


def test_bad_executor_settings_are_one_line_errors(design_predictor, design_args, tmp_path, capsys):
    base = design_args(design_predictor, tmp_path / "run", tmp_path / "cache")
    assert main([*base, "--workers", "0"]) != 0
    assert "--workers must be >= 1" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "r2"), "--executor", "ray://x:1"]) != 0
    err = capsys.readouterr().err.strip()
    assert "dask://HOST:PORT" in err and len(err.splitlines()) == 1


def test_report_of_a_single_path_run_shows_its_search(sp_predictor, tmp_path, capsys) -> None:
    assert main(_single_path_args(sp_predictor, tmp_path, "--budget", "15mJ")) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path / "run")]) == 0
    assert "single-path search: " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget", "15mJ", "--family", "conv"], "searches the mbconv family"),
        (["--min-accuracy", "0.5"], "needs an energy budget"),
        (["--budget", "0.001mJ"], "no network of the single-path space fits"),
        (["--budget", "15mJ", "--stage1-share", "2"], "stage-1 share"),
        (["--budget", "15mJ", "--finetune-epochs", "0"], "fine-tune epochs must be > 0"),
        (["--budget", "15mJ", "--time-limit", "5min"], "--time-limit bounds --method bo"),
    ],
)
def test_bad_single_path_input_is_a_one_line_error(sp_predictor, tmp_path, capsys, extra, message):
    assert main(_single_path_args(sp_predictor, tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("acnn: error:")


def test_help_states_units(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["design", "--help"])
    text = capsys.readouterr().out
    assert "--method {bo,single-path}" in text
    assert "mJ" in text and "epochs" in text


def test_an_unknown_cost_form_in_a_config_file_is_a_one_line_error(
    sp_predictor, tmp_path, capsys
) -> None:
    config = tmp_path / "design.yaml"
    config.write_text("cost_form: cubic\n")
    extra = ["--budget", "15mJ", "--config", str(config)]
    assert main(_single_path_args(sp_predictor, tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert "cost form must be one of log, budget" in err and len(err.splitlines()) == 1


def test_a_config_file_gives_the_budget_with_its_unit_and_a_flag_overrides_it(tmp_path) -> None:
    from adaptive_cnn.cli.design_command import resolve_config
    from adaptive_cnn.cli.main import build_parser

    path = tmp_path / "design.yaml"
    path.write_text("budget: 500uJ\ndataset: digits\nlink: none\n")
    parse = build_parser().parse_args
    assert resolve_config(parse(["design", "--config", str(path)])).budget_mj == 0.5
    flagged = parse(["design", "--config", str(path), "--budget", "2mJ"])
    assert resolve_config(flagged).budget_mj == 2.0  # flags over the file, alias or not
