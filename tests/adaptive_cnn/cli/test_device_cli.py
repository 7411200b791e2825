"""``acnn devices``: the table, --json, the user's folder, and one-line errors."""

from __future__ import annotations

import argparse
import json
import sys

import pytest
import yaml

from adaptive_cnn.cli.device_commands import add_devices_parser
from adaptive_cnn.cli.main import EXIT_USAGE, build_parser, main
from energy_models.devices import DEVICES_DIR_ENV
from energy_models.errors import EnergyModelError

SHIPPED = {"jetson-nano", "local", "phone"}

BOARD = {
    "description": "a test board",
    "cores": 2,
    "threads": 2,
    "memory_limit": "96MiB",
    "power": {"source": "declared", "idle_w": 1, "active_w": 3},
    "links": {"wifi": {"rtt_ms": 4}},
    "sources": ["test"],
}


@pytest.fixture(autouse=True)
def no_user_profiles(tmp_path, monkeypatch):
    empty = tmp_path / "no-user-profiles"
    empty.mkdir()
    monkeypatch.setenv(DEVICES_DIR_ENV, str(empty))


def _wired() -> bool:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return "devices" in commands.choices


def run_cli(capsys, *argv):
    """``acnn devices ...`` through main() once it is wired, else through the same steps."""
    if _wired():
        code = main(list(argv))
    else:
        parser = argparse.ArgumentParser(prog="acnn")
        add_devices_parser(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(list(argv))
        try:
            code = args.run(args)
        except EnergyModelError as exc:
            print(f"acnn: error: {exc}", file=sys.stderr)
            code = EXIT_USAGE
    out, err = capsys.readouterr()
    return code, out, err


def test_table_lists_every_shipped_profile(capsys):
    code, out, _ = run_cli(capsys, "devices")
    assert code == 0
    for name in SHIPPED:
        assert name in out
    phone_row = next(line for line in out.splitlines() if line.startswith("phone"))
    assert "declared" in phone_row and "(estimated)" in phone_row and "256 MiB" in phone_row
    assert "wifi, lte, 3g" in phone_row
    nano_row = next(line for line in out.splitlines() if line.startswith("jetson-nano"))
    # a sensor first; only the fallback is labelled estimated
    assert nano_row.index("jetson-ina") < nano_row.index("estimated") and "4/4" in nano_row
    link_rows = {line.split()[0] for line in out.splitlines()[1:] if line.split()}
    assert {"wifi", "lte", "3g"} <= link_rows


def test_json_is_a_list_of_profiles(capsys):
    code, out, _ = run_cli(capsys, "devices", "--json")
    assert code == 0
    records = json.loads(out)
    assert {r["name"] for r in records} == SHIPPED
    for record in records:
        assert record["sources"] and record["power"]["source"] and record["links"]
        assert record["estimated"] == (record["power"]["source"] == "declared")


def test_devices_dir_adds_and_overrides(capsys, tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "board.yaml").write_text(yaml.safe_dump(BOARD))
    code, out, _ = run_cli(capsys, "devices", "--devices-dir", str(user))
    assert code == 0
    assert "board" in out and "96 MiB" in out
    assert "wifi (board)" in out  # its overridden link gets a row of its own
    code, out, _ = run_cli(capsys, "devices", "--devices-dir", str(user), "--json")
    board = next(r for r in json.loads(out) if r["name"] == "board")
    assert board["links"]["wifi"]["rtt_ms"] == 4.0


@pytest.mark.parametrize("content", ["cores: [1, 2\n", yaml.safe_dump({**BOARD, "colour": "red"})])
def test_bad_profile_is_a_one_line_error(capsys, tmp_path, content):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "broken.yaml").write_text(content)
    code, out, err = run_cli(capsys, "devices", "--devices-dir", str(user))
    assert code == 2
    assert out == ""
    assert err.startswith("acnn: error:") and "broken.yaml" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_devices_dir_is_a_one_line_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "devices", "--devices-dir", str(tmp_path / "absent"))
    assert code == 2 and "does not exist" in err
