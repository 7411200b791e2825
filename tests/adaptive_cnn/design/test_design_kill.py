"""kill -9 during `acnn design`, then --resume: nothing finished is redone, same result.

The killed run uses its own training cache, so the resumed run can only avoid retraining
finished evaluations through the journal; the journal lines written before the kill stay
byte-identical, and the final design equals that of an uninterrupted run with the seed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from adaptive_cnn.cli.main import main


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_sigkill_then_resume_repeats_nothing(tmp_path, capsys, design_predictor, design_args):
    predictor = design_predictor
    clean = design_args(predictor, tmp_path / "clean", tmp_path / "cache-clean", trials=5)
    assert main([*clean, "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)

    killed_dir = tmp_path / "killed"
    args = design_args(predictor, killed_dir, tmp_path / "cache-killed", trials=5)
    child = subprocess.Popen([sys.executable, "-m", "adaptive_cnn", *args])
    journal = killed_dir / "journal.jsonl"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            lines = journal.read_text().splitlines() if journal.exists() else []
            if len(lines) >= 2 or child.poll() is not None:
                break
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    before = journal.read_bytes()
    finished = [line for line in before.decode().splitlines() if line.endswith("}")]
    assert 1 <= len(finished) < 5, "the child must be killed mid-search"

    assert (
        main(
            [
                "design",
                "--resume",
                str(killed_dir),
                "--cache-dir",
                str(tmp_path / "cache-killed"),
                "--quiet",
                "--json",
            ]
        )
        == 0
    )
    resumed = json.loads(capsys.readouterr().out)
    after = journal.read_bytes().decode().splitlines()
    assert after[: len(finished)] == finished  # finished evaluations were not redone
    indices = [json.loads(x)["index"] for x in after if x.endswith("}")]
    assert indices == list(range(5))
    for key in ("stages", "thresholds", "test_accuracy", "energy_mj", "evaluations"):
        assert resumed[key] == expected[key]
