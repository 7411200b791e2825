"""The acnn command: train with --json, cache hits, and one-line errors for bad input."""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys

import pytest

from adaptive_cnn.cli.main import main

TRAIN = [
    "train",
    "--dataset",
    "digits",
    "--arch",
    "c8k3p-fc16",
    "--epochs",
    "0.5",
    "--threads",
    "1",
]


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_json_then_cache_hit(capsys, tmp_path):
    args = [*TRAIN, "--cache-dir", str(tmp_path / "c"), "--json", "--quiet"]
    code, out, _ = run_cli(capsys, *args, "--out", str(tmp_path / "run"))
    assert code == 0
    record = json.loads(out)
    for key in (
        "arch",
        "dataset",
        "val_accuracy",
        "test_accuracy",
        "params",
        "macs",
        "train_seconds",
        "cache_hit",
    ):
        assert key in record
    assert record["arch"] == "c8k3p-fc16" and record["dataset"] == "digits"
    assert record["cache_hit"] is False
    assert record["config"]["epochs"] == 0.5
    saved = json.loads((tmp_path / "run" / "train.json").read_text())
    assert saved["cache_key"] == record["cache_key"]
    assert (tmp_path / "run" / "weights.pt").is_file()

    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and json.loads(out)["cache_hit"] is True


def test_train_table_and_progress(capsys, tmp_path):
    code, out, err = run_cli(capsys, *TRAIN, "--no-cache")
    assert code == 0
    assert "test accuracy" in out and "MACs/image" in out
    assert "epoch" in err  # progress goes to stderr


def test_config_file_and_flag_override(capsys, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("epochs: 5\nbatch_size: 32\n")
    args = [*TRAIN, "--config", str(config), "--no-cache", "--json", "--quiet"]
    code, out, _ = run_cli(capsys, *args)
    record = json.loads(out)
    assert code == 0
    assert record["config"]["epochs"] == 0.5  # the flag wins over the file
    assert record["config"]["batch_size"] == 32


def _corrupt_idx_dir(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        (folder / f"{name}.gz").write_bytes(gzip.compress(b"\x01\x02\x03\x04garbage"))
    for name in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / name).write_bytes(struct.pack(">HBBI", 0, 8, 1, 2) + b"\x00\x01")
    return folder


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--family", "resnet9000", "--dataset", "digits"], "unknown"),
        (["train", "--arch", "c16k3p-zz", "--dataset", "digits"], "c16k3p-zz"),
        (["train", "--arch", "c8k3", "--dataset", "nope"], "unknown dataset"),
        (
            ["train", "--arch", "c8k3", "--dataset", "mnist", "--data-dir", "/nonexistent/mnist"],
            "not found",
        ),
        (["train", "--arch", "c8k3", "--dataset", "digits", "--epochs", "-1"], "epochs"),
        (["networks", "--input-shape", "28x28"], "CxHxW"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.startswith("acnn: error:") and err.count("\n") == 1
    assert message in err


def test_corrupt_idx_header_is_one_line(capsys, tmp_path):
    folder = _corrupt_idx_dir(tmp_path)
    code, _, err = run_cli(
        capsys, "train", "--arch", "c8k3", "--dataset", "mnist", "--data-dir", str(folder)
    )
    assert code == 2 and err.count("\n") == 1 and "idx" in err.lower()


def test_unknown_config_key(capsys, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("epoch: 3\n")
    code, _, err = run_cli(capsys, *TRAIN, "--config", str(config))
    assert code == 2 and "unknown training setting 'epoch'" in err


def test_datasets_lists_digits_as_available(capsys):
    code, out, _ = run_cli(capsys, "datasets", "--json")
    rows = {r["name"]: r for r in map(json.loads, out.splitlines())}
    assert code == 0 and rows["digits"]["available"] is True
    assert {"fashion-mnist", "mnist", "cifar10", "imagefolder", "digits"} <= set(rows)


def test_networks_lists_every_family(capsys):
    from adaptive_cnn.networks import list_networks

    code, out, _ = run_cli(capsys, "networks", "--json")
    families = {json.loads(line)["family"] for line in out.splitlines()}
    assert code == 0 and families == set(list_networks())


def test_console_script_help():
    done = subprocess.run(
        [sys.executable, "-m", "adaptive_cnn", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    for command in ("datasets", "networks", "train"):
        assert command in done.stdout


def test_val_fraction_accepts_an_image_count(capsys):
    code, out, _ = run_cli(
        capsys, *TRAIN, "--val-fraction", "300", "--no-cache", "--json", "--quiet"
    )
    assert code == 0 and json.loads(out)["split"]["num_val"] == 300
