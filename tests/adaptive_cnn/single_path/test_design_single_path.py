"""``acnn design --method single-path`` end to end on digits, and its input errors."""

from __future__ import annotations

import json

import pytest

from adaptive_cnn.cli.main import main
from adaptive_cnn.networks import parse_arch


def _args(predictor_file, tmp_path, *extra):
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


def test_single_path_design_writes_a_run_folder(predictor_file, tmp_path, capsys) -> None:
    assert main(_args(predictor_file, tmp_path, "--budget", "15mJ", "--json")) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == "single-path" and result["config"]["method"] == "single-path"
    assert result["energy_source"] == "estimated" and result["budget_mj"] == 15.0
    (stage,) = result["stages"]
    assert parse_arch(stage["arch"]).family == "mbconv"
    sp = result["single_path"]
    assert sp["arch"] == stage["arch"] and sp["energy_label"] == "estimated"
    assert stage["energy_mj"] == pytest.approx(sp["energy_mj"]) and sp["energy_mj"] <= 15.0
    assert 1 <= len(sp["trials"]) <= 2 and sp["warmup_epochs"] == 1
    assert sp["search_epochs"] == 1 + len(sp["trials"])  # warm-up once, then 1 epoch each
    assert sp["search_seconds"] > 0 and result["evaluations"] == 1
    assert sp["stage1_training"] == "from scratch" and sp["stage1_epochs"] == 1
    run = tmp_path / "run"
    for name in ("config.yaml", "design.yaml", "result.json", "search.csv", "stage1.pt"):
        assert (run / name).exists()
    assert main(["report", str(run)]) == 0
    assert "single-path search: " in capsys.readouterr().out


def test_the_found_network_can_be_fine_tuned_from_the_supernet(
    predictor_file, tmp_path, capsys
) -> None:
    extra = ["--budget", "15mJ", "--finetune-epochs", "0.5", "--json"]
    assert main(_args(predictor_file, tmp_path, *extra)) == 0
    result = json.loads(capsys.readouterr().out)
    sp = result["single_path"]
    assert sp["stage1_training"] == "fine-tuned from the supernet's weights"
    assert sp["stage1_epochs"] == 0.5 and result["config"]["finetune_epochs"] == 0.5
    assert result["stages"][0]["arch"] == sp["arch"] and 0 <= result["test_accuracy"] <= 1


def test_single_path_cascade_takes_a_reference_stage(predictor_file, tmp_path, capsys) -> None:
    extra = ["--budget", "40mJ", "--stages", "2", "--search-width", "0.5", "--json"]
    assert main(_args(predictor_file, tmp_path, *extra)) == 0
    result = json.loads(capsys.readouterr().out)
    first, second = (s["arch"] for s in result["stages"])
    assert second.startswith("mbconv:")
    assert result["stages"][1]["energy_mj"] > result["stages"][0]["energy_mj"]
    assert result["stages"][0]["energy_mj"] <= 20.0  # half the budget: another stage follows
    assert len(result["thresholds"]) == 1 and result["energy_mj"] <= 40.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget", "15mJ", "--family", "conv"], "searches the mbconv family"),
        (["--min-accuracy", "0.5"], "needs an energy budget"),
        (["--budget", "0.001mJ"], "no network of the single-path space fits"),
        (["--budget", "15mJ", "--stage1-share", "2"], "stage-1 share"),
        (["--budget", "15mJ", "--finetune-epochs", "0"], "fine-tune epochs must be > 0"),
    ],
)
def test_bad_input_is_a_one_line_error(predictor_file, tmp_path, capsys, extra, message):
    assert main(_args(predictor_file, tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("acnn: error:")


def test_help_states_units(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["design", "--help"])
    text = capsys.readouterr().out
    assert "--method {bo,single-path}" in text
    assert "mJ" in text and "epochs" in text


def test_the_budget_cost_form_settles_in_one_trial(predictor_file, tmp_path, capsys) -> None:
    extra = ["--budget", "15mJ", "--cost-form", "budget", "--lambda-trials", "1", "--json"]
    assert main(_args(predictor_file, tmp_path, *extra)) == 0
    result = json.loads(capsys.readouterr().out)
    sp = result["single_path"]
    assert result["config"]["cost_form"] == "budget"
    assert sp["search"]["cost_form"] == "budget" and sp["search"]["budget_mj"] == 15.0
    (trial,) = sp["trials"]
    assert trial["energy_mj"] <= 15.0 and trial["raw_energy_mj"] >= trial["energy_mj"]
    assert result["stages"][0]["energy_mj"] == pytest.approx(trial["energy_mj"])


def test_an_unknown_cost_form_in_a_config_file_is_a_one_line_error(
    predictor_file, tmp_path, capsys
) -> None:
    config = tmp_path / "design.yaml"
    config.write_text("cost_form: cubic\n")
    extra = ["--budget", "15mJ", "--config", str(config)]
    assert main(_args(predictor_file, tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert "cost form must be one of log, budget" in err and len(err.splitlines()) == 1
