"""A bounded fuzzer of bad and hostile input: every case is one line and exit 2.

Hypothesis generates malformed design settings (as a config file and as flags: wrong
types, out-of-range and non-finite numbers, unknown keys, YAML tags that would run code)
and corrupted run folders (truncated or retyped result.json, weights replaced by a
pickle that would run code, by text or by random bytes, paths escaping the folder), and
runs the commands in-process. Each case must end with exit code 2 and exactly one line on
stderr starting ``acnn: error:``; nothing outside the case's own folder changes, and no
payload runs (it would create a marker file). The generated cases are bounded so that the
fuzzer runs in CI in about a minute.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adaptive_cnn.cli.main import main
from adaptive_cnn.design import SEARCH_SETTINGS, BOSettings, DesignConfig
from adaptive_cnn.design.settings import Declared, declared

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MARKER = "acnn-fuzz-payload-ran"


def bad_values(d: Declared) -> list:
    """Values that setting ``d`` must refuse: wrong type, out of range, non-finite."""
    wrong_type = [[1, 2], {"a": 1}]
    if d.kind is bool:
        return ["maybe", 3, *wrong_type]
    if d.kind is int:
        out = [2.5, "many", True, "1e400", *wrong_type]
    elif d.kind is float:
        out = ["nan", "inf", "-inf", "1e400", "fast", True, *wrong_type]
    elif d.kind is tuple:
        return [5, [1, 2], {"a": 1}]
    else:
        out = [5, 2.5, *wrong_type] + (["no-such-choice"] if d.setting.choices else [])
    s = d.setting
    if s.minimum is not None:
        out.append(s.minimum - 1)
    if s.maximum is not None:
        out.append(s.maximum + 1)
    if s.above is not None:
        out.append(s.above)
    if not d.optional:
        out.append(None)
    return out


def _settings_of(*classes: type) -> list[Declared]:
    return [d for cls in classes for d in declared(cls) if d.setting.flag != ""]


COMMON = _settings_of(DesignConfig)
BO = _settings_of(BOSettings)
OTHER_METHOD = _settings_of(*(c for c in SEARCH_SETTINGS.values() if c is not BOSettings))
BAD_SETTING = st.sampled_from(COMMON + BO).flatmap(
    lambda d: st.tuples(st.just(d), st.sampled_from(bad_values(d)))
)
BASE = {"budget": "30mJ", "dataset": "digits", "link": "none", "trials": 1}


def _one_error_line(err: str) -> bool:
    lines = err.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("acnn: error:")


def _run(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(argv)
    return code, capsys.readouterr().err


def _listing(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in root.rglob("*")}


def _yaml_payload(marker: Path) -> str:
    """A YAML document whose python tag would create ``marker`` if it were constructed."""
    return f"!!python/object/apply:os.system ['touch {marker}']\n"


class _Payload:
    """Unpickling this would create the marker file (pickle runs ``__reduce__``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def sandbox(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    return root


# --- design settings -------------------------------------------------------------------


@FUZZ
@given(case=BAD_SETTING)
def test_a_bad_setting_in_a_config_file_is_one_line(case, sandbox, capsys, design_predictor):
    d, value = case
    case_dir = Path(os.path.join(sandbox, f"c{abs(hash((d.name, repr(value))))}"))
    case_dir.mkdir(exist_ok=True)
    config = {**BASE, "predictor": design_predictor, d.name: value}
    (case_dir / "design.yaml").write_text(yaml.safe_dump(config))
    before = _listing(sandbox)
    code, err = _run(
        ["design", "--config", str(case_dir / "design.yaml"), "--out", str(case_dir / "run"),
         "--cache-dir", str(case_dir / "cache"), "--quiet"],
        capsys,
    )  # fmt: skip
    assert code == 2 and _one_error_line(err), (d.name, value, err)
    assert not (case_dir / "run").exists(), "nothing may be written for a refused config"
    assert _listing(sandbox).keys() == before.keys()


@FUZZ
@given(case=BAD_SETTING)
def test_a_bad_setting_as_a_flag_is_one_line(case, sandbox, capsys, design_predictor):
    d, value = case
    if d.kind is bool or value is None or isinstance(value, (list, dict)):
        return  # flags carry text; a switch takes no value
    if d.kind in (str, tuple) and not d.setting.choices:
        return  # any text is a name here (a dataset, a file): refused later, not as a value
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    out = sandbox / "run"
    argv = ["design", "--budget", "30mJ", "--dataset", "digits", "--link", "none",
            "--predictor", design_predictor, "--out", str(out), "--quiet"]  # fmt: skip
    code, err = _run([*argv, f"{d.flag}={text}"], capsys)
    assert code == 2 and _one_error_line(err), (d.flag, text, err)
    assert not out.exists()


@FUZZ
@given(
    key=st.text(st.characters(categories=("Ll",)), min_size=3, max_size=12),
    method=st.sampled_from(["bo", "single-path"]),
)
def test_unknown_keys_and_the_other_methods_settings_are_refused(key, method, sandbox, capsys):
    known = {d.name for d in COMMON + BO + OTHER_METHOD} | {"budget", "method"}
    mine = {d.name for d in declared(SEARCH_SETTINGS[method])}
    foreign = sorted(k for k in {d.name for d in BO + OTHER_METHOD} if k not in mine)
    extra = {key: 1} if key not in known else {foreign[len(key) % len(foreign)]: 1}
    path = sandbox / "design.yaml"
    families = ["mbconv"] if method == "single-path" else ["conv"]
    path.write_text(yaml.safe_dump({**BASE, "method": method, "families": families, **extra}))
    if method == "single-path":
        path.write_text(path.read_text().replace("trials: 1\n", ""))
    code, err = _run(["design", "--config", str(path), "--out", str(sandbox / "r")], capsys)
    assert code == 2 and _one_error_line(err), err
    assert next(iter(extra)) in err


@FUZZ
@given(
    document=st.sampled_from(
        [
            "budget: [unclosed\n",
            "- a list\n- not a mapping\n",
            "\x00\x01\x02 binary",
            "budget: 2mJ\nbudget: 3mJ\ntrials: !!binary aGVsbG8=\n",
            "",
        ]
    )
    | st.binary(min_size=1, max_size=64).map(lambda b: b.decode("latin-1"))
)
def test_malformed_and_hostile_yaml_is_one_line_and_runs_nothing(document, sandbox, capsys):
    marker = sandbox / MARKER
    path = sandbox / "design.yaml"
    for text in (document, _yaml_payload(marker), f"budget: 2mJ\nseed: {_yaml_payload(marker)}"):
        path.write_text(text, encoding="latin-1")
        code, err = _run(["design", "--config", str(path), "--out", str(sandbox / "r")], capsys)
        assert code == 2 and _one_error_line(err), (text, err)
        assert not marker.exists(), "a YAML tag ran code"


# --- run folders -----------------------------------------------------------------------


def _truncate(run: Path, rng_bytes: bytes) -> None:
    text = (run / "result.json").read_text()
    (run / "result.json").write_text(text[: 1 + rng_bytes[0] % (len(text) - 1)])


def _retype(run: Path, rng_bytes: bytes) -> None:
    summary = json.loads((run / "result.json").read_text())
    keys = ["stages", "policy", "input", "thresholds", "energy_mj", "link"]
    key = keys[rng_bytes[0] % len(keys)]
    summary[key] = [None, "x", True, {"a": []}, -1][rng_bytes[-1] % 5]
    (run / "result.json").write_text(json.dumps(summary))


def _escape(run: Path, rng_bytes: bytes) -> None:
    summary = json.loads((run / "result.json").read_text())
    target = ["../../../../etc/passwd", "/etc/passwd", "../outside.pt"][rng_bytes[0] % 3]
    summary["stages"][rng_bytes[-1] % len(summary["stages"])]["weights"] = target
    (run / "result.json").write_text(json.dumps(summary))


def _foreign_pickle(run: Path, rng_bytes: bytes) -> None:
    name = ["stage1.pt", "stage2.pt", "cloud.pt"][rng_bytes[0] % 3]
    (run / name).write_bytes(pickle.dumps(_Payload(run.parent / MARKER)))


def _text_weights(run: Path, rng_bytes: bytes) -> None:
    (run / "stage1.pt").write_bytes(b"not a state dict\n" + rng_bytes)


def _nonfinite_threshold(run: Path, rng_bytes: bytes) -> None:
    summary = json.loads((run / "result.json").read_text())
    summary["policy"]["thresholds"] = [math.nan] * len(summary["policy"]["thresholds"])
    (run / "result.json").write_text(json.dumps(summary))  # json writes NaN, reads it back


CORRUPTIONS = [_truncate, _retype, _escape, _foreign_pickle, _text_weights, _nonfinite_threshold]
#: report reads no weights: only the corruptions of what it reads apply to it
READS_WEIGHTS = {"export", "classify"}


@pytest.fixture(scope="module")
def images(tmp_path_factory, runtime_run_dir):
    import numpy as np

    path = tmp_path_factory.mktemp("images") / "x.npy"
    np.save(path, np.zeros((2, 1, 8, 8), dtype=np.float32))
    return path


@FUZZ
@given(
    corrupt=st.sampled_from(CORRUPTIONS),
    command=st.sampled_from(["report", "export", "classify"]),
    noise=st.binary(min_size=2, max_size=8),
)
def test_a_corrupted_run_folder_is_one_line_and_runs_nothing(
    corrupt, command, noise, runtime_run_dir, images, sandbox, capsys
):
    if command not in READS_WEIGHTS and corrupt in (_foreign_pickle, _text_weights):
        return
    case = sandbox / f"case-{corrupt.__name__}-{command}-{noise.hex()}"
    shutil.rmtree(case, ignore_errors=True)  # hypothesis may replay a case
    run = case / "run"
    shutil.copytree(runtime_run_dir, run)
    corrupt(run, noise)
    before = _listing(case)
    argv = {
        "report": ["report", str(run)],
        "export": ["export", str(run), "--format", "torchscript", "--out", str(case / "out")],
        "classify": ["classify", str(run), str(images)],
    }[command]
    code, err = _run(argv, capsys)
    assert code == 2 and _one_error_line(err), (corrupt.__name__, command, err)
    assert not (case / MARKER).exists(), "a pickle in the run folder ran code"
    assert _listing(case).keys() == before.keys(), "a refused command left files behind"


# --- every subcommand's numeric flags ----------------------------------------------------


def _numeric_options() -> list[tuple[str, str, str]]:
    """(command, flag, kind) of every option of every subcommand whose value is a number
    (``int`` or ``float``, by the converter argparse was given)."""
    import argparse

    from adaptive_cnn.cli.main import build_parser
    from adaptive_cnn.flag_values import _finite, _whole

    whole = {int, _whole}
    found = []
    top = build_parser()
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        parsers = [(f"{name} {n}", p) for a in nested for n, p in a.choices.items()] or [
            (name, sub)
        ]
        for command, parser in parsers:
            for action in parser._actions:
                kind = _kind_of(action.type, whole, _finite)
                if kind and action.option_strings:
                    found.append((command, action.option_strings[-1], kind))
    return found


def _kind_of(converter, whole, finite) -> str | None:
    if converter is None:
        return None
    if converter in whole:
        return "int"
    if converter in (float, finite):
        return "float"
    name = getattr(converter, "__qualname__", "")
    if name.startswith(("int_in", "port")):
        return "int"
    if name.startswith("float_in"):
        return "float"
    return None


NUMERIC_OPTIONS = _numeric_options()
#: text no number flag may take: not a number, not finite, not whole for an integer
BAD_NUMBERS = {
    "int": ["2.5", "many", "1e400", "nan", "", "0x", "9" * 400],
    "float": ["nan", "inf", "-inf", "1e400", "fast", ""],
}


def test_the_fuzzer_sees_the_numeric_options_of_every_command() -> None:
    commands = {c.split()[0] for c, _, _ in NUMERIC_OPTIONS}
    assert {"train", "serve", "classify", "profile", "predict", "reproduce"} <= commands
    assert ("serve", "--port", "int") in NUMERIC_OPTIONS


@FUZZ
@given(
    case=st.sampled_from(NUMERIC_OPTIONS).flatmap(
        lambda o: st.tuples(st.just(o), st.sampled_from(BAD_NUMBERS[o[2]]))
    )
)
def test_a_bad_number_for_any_flag_of_any_command_is_one_line(case, capsys) -> None:
    (command, flag, _), text = case
    positional = {"serve": ["RUN"], "classify": ["RUN", "x.npy"], "export": ["RUN"],
                  "predict": ["P"], "fit-energy": ["P"], "energy-report": ["P"],
                  "report": ["RUN"]}.get(command, [])  # fmt: skip
    code, err = _run([*command.split(), *positional, f"{flag}={text}"], capsys)
    assert code == 2 and _one_error_line(err), (command, flag, text, err)
