"""``acnn check-energy``: the design's local stages timed on this device against their
predicted energy, per stage and for the whole cascade."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from adaptive_cnn.cli.main import main
from adaptive_cnn.energy_check import (
    CHECK_FILE,
    DECLARED_LABEL,
    check_energy,
    load_split,
)
from adaptive_cnn.errors import AcnnError
from adaptive_cnn.run_folder import load_run
from energy_models.power import DeclaredPowerModel


@pytest.fixture
def copy_run(runtime_run_dir, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(runtime_run_dir, target)
    return target


def with_thresholds(run_dir, *thresholds, drop_pricing=False):
    summary = json.loads((run_dir / "result.json").read_text())
    summary["policy"]["thresholds"] = list(thresholds)
    if drop_pricing:
        del summary["pricing"]
    (run_dir / "result.json").write_text(json.dumps(summary))
    return load_run(run_dir)


class StepClock:
    """Advances 1 ms at every read: every timed stage call lasts exactly 1 ms."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1e-3
        return self.now


def test_closed_form_with_a_fake_clock_and_declared_power(copy_run, digits):
    run = with_thresholds(copy_run, 0.0, math.inf)  # everyone exits at stage 1
    images = digits.test.images[:7]
    check = check_energy(
        run, images, warmup=0, power=DeclaredPowerModel(1.0, 10.0), clock=StepClock()
    )
    first, second = check.stages
    assert (first.calls, second.calls, dict(check.exits)) == (7, 0, {"stage1": 7})
    assert first.measured_mj == pytest.approx(10.0)  # 1 ms x 10 W
    assert first.ratio == pytest.approx(10.0 / run.stages[0].energy_mj)
    assert check.predicted_mj_per_image == pytest.approx(run.stages[0].energy_mj)
    assert check.ratio == pytest.approx(first.ratio)
    assert math.isnan(second.ratio) and second.to_dict()["ratio"] is None  # never ran
    assert check.energy.label == DECLARED_LABEL and check.pricing_label == ""


def test_images_passed_on_are_charged_every_local_stage(copy_run, digits):
    run = with_thresholds(copy_run, math.inf, math.inf)  # nobody exits locally: the cloud
    check = check_energy(
        run, digits.test.images[:4], warmup=1, power=DeclaredPowerModel(1.0, 10.0),
        clock=StepClock(),
    )  # fmt: skip
    assert dict(check.exits) == {"cloud": 4} and [s.calls for s in check.stages] == [4, 4]
    both = run.stages[0].energy_mj + run.stages[1].energy_mj
    assert check.predicted_mj_per_image == pytest.approx(both)
    assert check.measured_mj_per_image == pytest.approx(20.0)  # two stages x 1 ms x 10 W


def test_cli_runs_the_split_writes_the_result_and_its_config(runtime_run_dir, copy_run, capsys):
    run = load_run(copy_run)
    code = main(["check-energy", str(copy_run), "--limit", "12", "--warmup", "2", "--json"])
    assert code == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert "elapsed" in captured.err  # progress with elapsed time
    saved = json.loads((copy_run / CHECK_FILE).read_text())
    assert saved == printed
    assert saved["images"] == 12 and saved["runtime"] == run.runtime == "onnxruntime"
    assert saved["config"]["split"] == "test" and saved["config"]["limit"] == 12
    assert saved["config"]["warmup"] == 2 and saved["threads"] == run.threads
    assert saved["energy"]["label"] in ("measured", DECLARED_LABEL)
    assert saved["pricing_label"] == ""
    passed = saved["exits"]
    # the cascade's prediction is each image's stages' predictions, by hand from its exits
    e1, e2 = run.stages[0].energy_mj, run.stages[1].energy_mj
    by_hand = (passed.get("stage1", 0) * e1 + (12 - passed.get("stage1", 0)) * (e1 + e2)) / 12
    assert saved["cascade"]["predicted_mj_per_image"] == pytest.approx(by_hand)
    assert saved["cascade"]["measured_mj_per_image"] > 0
    assert math.isfinite(saved["cascade"]["ratio"]) and saved["cascade"]["ratio"] > 0
    assert saved["stages"][0]["calls"] == 12 and saved["stages"][0]["measured_mj"] > 0
    images, labels = load_split(run, "test")
    assert len(images) == len(labels) > 12


def test_cli_table_and_a_run_in_another_runtime(copy_run, capsys):
    args = ["check-energy", str(copy_run), "--limit", "3", "--warmup", "0", "--quiet"]
    assert main([*args, "--runtime", "torch"]) == 0
    out = capsys.readouterr().out
    assert "measured/predicted" in out and "cascade" in out
    assert "in torch with" in out and "priced for onnxruntime, run in torch" in out
    saved = json.loads((copy_run / CHECK_FILE).read_text())
    assert saved["pricing_label"] == "priced for onnxruntime, run in torch"
    assert main(args) == 0
    assert "priced for" not in capsys.readouterr().out


def test_an_old_run_folder_is_checked_in_torch_and_says_it_was_not_recorded(copy_run, capsys):
    with_thresholds(copy_run, 0.0, 0.0, drop_pricing=True)
    args = ["check-energy", str(copy_run), "--limit", "2", "--warmup", "0", "--quiet", "--json"]
    assert main(args) == 0
    saved = json.loads(capsys.readouterr().out)
    assert saved["runtime"] == "torch" and saved["pricing_label"] == ""
    assert saved["config"]["priced_for"]["recorded"] is False


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--limit", "0"], "--limit: must be a whole number >= 1"),
        (["--split", "holdout"], "invalid choice: 'holdout'"),
        (["--warmup", "-1"], "--warmup"),
        (["--runtime", "tflite"], "invalid choice: 'tflite'"),
    ],
)
def test_bad_input_is_one_error_line(copy_run, extra, message, capsys):
    assert main(["check-energy", str(copy_run), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("acnn: error:") and message in err[0]
    assert not (copy_run / CHECK_FILE).exists()


def test_a_folder_that_is_not_a_run_is_one_error_line(tmp_path, capsys):
    assert main(["check-energy", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("acnn: error:") and "result.json" in err[0]


def test_no_images_is_an_error_not_a_division_by_zero(copy_run):
    from adaptive_cnn.errors import RunFolderError

    with pytest.raises(RunFolderError, match="at least one image"):
        check_energy(load_run(copy_run), np.zeros((0, 1, 8, 8), dtype=np.uint8))


def test_a_device_profile_that_is_gone_is_one_error_line(copy_run, capsys):
    summary = json.loads((copy_run / "result.json").read_text())
    summary["device"] = summary["config"]["device"] = "board-that-is-gone"
    (copy_run / "result.json").write_text(json.dumps(summary))
    assert main(["check-energy", str(copy_run), "--limit", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'board-that-is-gone' it was designed for cannot be loaded" in err[0]


def test_measure_cascade_of_local_stages_only(digits):
    """A baseline's cascade (no cloud): the last local stage answers every image it gets."""
    from types import SimpleNamespace

    from adaptive_cnn.energy_check import measure_cascade
    from selector import ExitPolicy

    stages = [SimpleNamespace(name=f"stage{i}", arch="a", energy_mj=2.0 * i) for i in (1, 2)]
    confident = lambda x: np.tile([[0.9, 0.1]], (len(x), 1))  # noqa: E731
    unsure = lambda x: np.tile([[0.5, 0.5]], (len(x), 1))  # noqa: E731
    policy = ExitPolicy((0.8,), "max-prob")
    images = digits.test.images[:5]
    power = DeclaredPowerModel(1.0, 10.0)
    passed = measure_cascade(
        stages, [unsure, unsure], policy, images, power=power, runtime="torch", threads=1,
        warmup=0, clock=StepClock(),
    )  # fmt: skip
    assert dict(passed.exits) == {"stage2": 5}  # none sent on: no cloud stage to send to
    assert passed.predicted_mj_per_image == pytest.approx(6.0)
    assert passed.measured_mj_per_image == pytest.approx(20.0)  # two 1 ms calls x 10 W
    stopped = measure_cascade(
        stages, [confident, unsure], policy, images, power=power, runtime="torch", threads=1,
        warmup=0, clock=StepClock(),
    )  # fmt: skip
    assert dict(stopped.exits) == {"stage1": 5}
    assert stopped.predicted_mj_per_image == pytest.approx(2.0)
    with pytest.raises(ValueError, match="do not make one cascade"):
        measure_cascade(stages, [unsure], policy, images, power=power, runtime="torch", threads=1)


def test_passes_pool_every_pass_and_keep_each_ratio(copy_run, digits):
    run = with_thresholds(copy_run, 0.0, math.inf)  # everyone exits at stage 1
    images = digits.test.images[:4]
    seen = []
    check = check_energy(
        run, images, warmup=0, passes=3, power=DeclaredPowerModel(1.0, 10.0),
        clock=StepClock(), progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert check.images == 4 and check.stages[0].calls == 12
    assert len(check.pass_ratios) == 3 and check.pass_ratios[0] == pytest.approx(check.ratio)
    assert check.config["passes"] == 3
    assert seen[-1] == (12, 12) and len(seen) == 12
    assert check.to_dict()["cascade"]["pass_ratios"] == pytest.approx(list(check.pass_ratios))
    with pytest.raises(AcnnError, match="at least one pass"):
        check_energy(run, images, passes=0)


def test_cli_prints_each_pass(copy_run, capsys):
    assert main(["check-energy", str(copy_run), "--limit", "3", "--passes", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "2 passes pooled; the cascade's measured/predicted per pass:" in out
    saved = json.loads((copy_run / CHECK_FILE).read_text())
    assert len(saved["cascade"]["pass_ratios"]) == 2
    assert main(["check-energy", str(copy_run), "--passes", "0"]) == 2


def test_pooled_passes_charge_each_pass_at_its_own_power(digits):
    """A sensor reads another power in each pass: each pass's latencies at its own."""
    from types import SimpleNamespace

    from adaptive_cnn.energy_check import measure_cascade, pool_passes
    from selector import ExitPolicy

    stage = [SimpleNamespace(name="stage1", arch="a", energy_mj=5.0)]
    answer = lambda x: np.tile([[0.9, 0.1]], (len(x), 1))  # noqa: E731
    checks = [
        measure_cascade(
            stage,
            [answer],
            ExitPolicy((), "max-prob"),
            digits.test.images[:3],
            power=DeclaredPowerModel(1.0, watts),
            runtime="torch",
            threads=1,
            warmup=0,
            clock=StepClock(),
        )  # fmt: skip
        for watts in (10.0, 20.0)
    ]
    pooled = pool_passes(checks)
    assert pooled.stages[0].measured_mj == pytest.approx(15.0)  # 1 ms at 10 W, then at 20 W
    assert pooled.measured_mj_per_image == pytest.approx(15.0)
    assert pooled.energy.power_w == pytest.approx(15.0)
    assert pooled.pass_ratios == pytest.approx((2.0, 4.0))
    assert pooled.stages[0].calls == 6
