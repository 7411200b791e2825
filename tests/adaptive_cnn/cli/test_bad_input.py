"""Bad and hostile command-line input: one line ``acnn: error: ...`` and exit code 2.

Each case is refused before anything expensive runs (no training, no serving, no big
allocation), whether the parser refuses a flag's value or the command refuses what it
was given (a predictor file, a network too large for the device's memory).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from adaptive_cnn import flag_values as values
from adaptive_cnn.cli.main import build_parser, main
from energy_models.predictor import EnergyPredictor

SHIPPED_LOCAL = Path(__file__).parents[3] / "energy_models" / "data" / "devices" / "local.yaml"


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """Exit code and stderr of ``acnn ARGV``: main returns 2, parser errors included."""
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.startswith("acnn: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["serve", "run", "--port", "70000"], ["--port", "1..65535", "70000"]),
        (["serve", "run", "--port=-5"], ["--port", "-5"]),
        (["serve", "run", "--port", "80.5"], ["--port", "whole number"]),
        (["serve", "run", "--max-batch-size", "0"], ["--max-batch-size"]),
        (["serve", "run", "--max-queue-delay-ms", "nan"], ["--max-queue-delay-ms", "finite"]),
        (["serve", "run", "--workers", "2.5"], ["--workers", "whole number"]),
        (["serve", "run", "--max-message-mb", "1e9"], ["--max-message-mb", "2047"]),
        (["train", "--arch", "c8k3", "--lr", "1e400"], ["--lr", "finite"]),
        (["train", "--arch", "c8k3", "--lr", "0"], ["--lr", "> 0"]),
        (["train", "--arch", "c8k3", "--lr", "-1e-3"], ["--lr", "> 0"]),
        (["train", "--arch", "c8k3", "--epochs", "inf"], ["--epochs", "finite"]),
        (["train", "--arch", "c8k3", "--subset", "2.5"], ["--subset", "whole number"]),
        (["train", "--arch", "c8k3", "--batch-size", "0"], ["--batch-size"]),
        (["train", "--arch", "c8k3", "--threads", "0"], ["--threads"]),
        (["train", "--arch", "c8k3", "--val-fraction", "1.5"], ["--val-fraction"]),
        (["train", "--arch", "c8k3", "--seed", "-1"], ["--seed"]),
        (["classify", "run", "x.npy", "--retries", "-1"], ["--retries"]),
        (["classify", "run", "x.npy", "--deadline-ms", "0"], ["--deadline-ms", "> 0"]),
        (["classify", "run", "x.npy", "--batch-size", "2.5"], ["--batch-size"]),
        (["profile", "--out", "p", "--repeats", "10"], ["--repeats", "30"]),
        (["profile", "--out", "p", "--rounds", "0"], ["--rounds"]),
        (["fit-energy", "p", "--out", "f.json", "--folds", "1"], ["--folds"]),
        (["predict", "p.json", "--arch", "c8k3", "--num-classes", "2.5"], ["--num-classes"]),
        (["networks", "--classes", "0"], ["--classes"]),
        (["reproduce", "offload", "--points", "2.5"], ["--points"]),
        (["reproduce", "neuralpower", "--folds", "1"], ["--folds"]),
        (["devices", "--bogus"], ["unrecognized arguments: --bogus"]),
        (["no-such-command"], ["invalid choice"]),
        (["design", "--budget", "-3mJ"], ["--budget", "-3mJ"]),
        (["design", "--budget", "2mJ", "--trials", "2.5"], ["--trials", "whole number"]),
    ],
)
def test_a_bad_flag_value_is_one_line_and_exit_2(capsys, argv, fragments) -> None:
    assert_one_line_error(*run_cli(capsys, *argv), *fragments)


@pytest.mark.parametrize("shape", ["1x100000x100000", "65x28x28", "1x28x5000"])
def test_an_input_shape_over_the_bounds_is_refused_before_allocation(capsys, shape) -> None:
    for argv in (["predict", "p.json", "--arch", "c8k3"], ["networks"]):
        code, err = run_cli(capsys, *argv, "--input-shape", shape)
        assert_one_line_error(code, err, "too large", "4096")


def test_a_config_file_with_a_fractional_count_is_refused(capsys, tmp_path) -> None:
    config = tmp_path / "design.yaml"
    config.write_text("budget: 2mJ\ntrials: 2.5\n")
    code, err = run_cli(capsys, "design", "--config", str(config))
    assert_one_line_error(code, err, str(config), "trials", "whole number")


def test_train_config_file_refuses_an_infinite_learning_rate(capsys, tmp_path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("lr: .inf\n")
    code, err = run_cli(capsys, "train", "--arch", "c8k3", "--config", str(config))
    assert_one_line_error(code, err, "lr must be a finite number")


@pytest.fixture
def absurd_predictor(design_predictor, tmp_path) -> Path:
    data = EnergyPredictor.load(design_predictor).to_dict()
    kind = sorted(data["layers"])[0]
    data["layers"][kind]["runtime"]["coefficients"] = [
        1e308 for _ in data["layers"][kind]["runtime"]["coefficients"]
    ]
    path = tmp_path / "absurd.json"
    path.write_text(json.dumps(data))
    return path


def test_a_predictor_with_absurd_coefficients_is_refused_by_predict_and_design(
    capsys, absurd_predictor, tmp_path
) -> None:
    code, err = run_cli(capsys, "predict", str(absurd_predictor), "--arch", "c8k3-fc16")
    assert_one_line_error(code, err, str(absurd_predictor), ".coefficients[0] is 1e+308")
    code, err = run_cli(
        capsys,
        *("design", "--budget", "2mJ", "--dataset", "digits", "--quiet"),
        *("--predictor", str(absurd_predictor), "--out", str(tmp_path / "run")),
    )
    assert_one_line_error(code, err, str(absurd_predictor), ".coefficients[0] is 1e+308")


def test_a_network_over_the_memory_limit_is_refused_before_training(
    capsys, tmp_path, monkeypatch
) -> None:
    devices = tmp_path / "devices"
    devices.mkdir()
    shutil.copy(SHIPPED_LOCAL, devices / "local.yaml")
    text = (devices / "local.yaml").read_text().replace("memory_limit: 4GiB", "memory_limit: 64KiB")
    (devices / "local.yaml").write_text(text)
    monkeypatch.setenv("ACNN_DEVICES_DIR", str(devices))
    # digits: 1x8x8; c8k3 ('same' padding): 1*8*9+8 = 80 params and 8x8x8 = 512 features;
    # fc64: 512*64+64 = 32832; the 10-class head: 64*10+10 = 650; 33562 params = 134248 B
    # (131 KiB) of fp32 weights, four times of which alone exceed 64 KiB
    code, err = run_cli(
        capsys, "train", "--arch", "c8k3-fc64", "--dataset", "digits", "--no-cache", "--quiet"
    )
    assert_one_line_error(
        code, err, "33.6k params: 4 x 131 KiB", "memory limit of 64 KiB", "c8k3-fc64"
    )


def _subcommands(parser: argparse.ArgumentParser, name: str = "acnn"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield f"{name} {sub_name}", sub
                yield from _subcommands(sub, f"{name} {sub_name}")


NUMERIC_TYPES = (int, float)


def test_every_checked_number_option_states_its_default(capsys) -> None:
    missing = []
    for name, parser in _subcommands(build_parser()):
        for action in parser._actions:
            numeric = action.type in NUMERIC_TYPES or getattr(action.type, "__module__", "") == (
                values.__name__
            )
            if action.option_strings and numeric and "default" not in (action.help or ""):
                missing.append(f"{name} {action.option_strings[0]}")
            assert action.type not in NUMERIC_TYPES or action.type is None, (
                f"{name} {action.option_strings}: plain {action.type.__name__} accepts nan, "
                "inf or rounds nothing; use adaptive_cnn.flag_values"
            )
    assert not missing


@pytest.mark.parametrize("command", ["predict", "energy-report", "serve", "profile", "classify"])
def test_help_exits_0_with_a_description_and_no_doubled_percent(capsys, command) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "%%" not in text
    description = text.split("\n\n")[1]
    assert not description.startswith(("positional arguments", "options")), text


def test_top_level_help_shows_single_percent_signs(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert exc.value.code == 0 and "within 10%" in text and "%%" not in text
