"""The client measures each local stage per image: latency x power beside the prediction,
and every energy of a run in another runtime says "priced for X, run in Y"."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from adaptive_cnn.cli.main import main
from adaptive_cnn.energy_check import DECLARED_LABEL, StageMeter
from energy_models.power import DeclaredPowerModel, PowerReading, PowerSource, PowerWindow
from rpc.edge import EdgeClassifier

INF = math.inf


class FakeSensor(PowerSource):
    """A sensor that reads ``power_w`` over every window (a replayed trace, not RAPL)."""

    name = "rapl"

    def __init__(self, power_w: float) -> None:
        super().__init__(clock=lambda: 0.0)
        self.power_w = power_w

    def begin(self) -> PowerWindow:
        power_w = self.power_w

        class Window(PowerWindow):
            def end(self) -> PowerReading:
                return PowerReading(power_w, power_w * 2.0, 2.0, "rapl", True)

        return Window()

    def describe(self) -> dict:
        return {"name": self.name, "measured": True}


class StepClock:
    """Advances ``step_s`` at every read: each timed call lasts exactly one step."""

    def __init__(self, step_s: float) -> None:
        self.now, self.step_s = 0.0, step_s

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now


def classify(run, images, **kw):
    classifier = EdgeClassifier(run, None, **kw)
    try:
        return classifier.classify(images)
    finally:
        classifier.close()


def test_the_meter_shares_a_call_among_its_images_and_uses_the_declared_power():
    meter = StageMeter(DeclaredPowerModel(1.0, 10.0), clock=StepClock(0.002))
    meter.start()
    meter.call(lambda x: x, np.zeros((1, 1)), (0,))  # 2 ms for one image
    meter.call(lambda x: x, np.zeros((4, 1)), (0, 1, 2, 3))  # 2 ms shared by four
    energy = meter.finish()
    assert meter.image_ms(0) == pytest.approx([2.0, 0.5])
    assert meter.image_ms(3) == pytest.approx([0.5]) and meter.image_ms(9) == []
    assert (energy.power_w, energy.measured, energy.label) == (10.0, False, DECLARED_LABEL)
    assert energy.energy_mj(2.0) == pytest.approx(20.0)  # 2 ms x 10 W


def test_a_sensor_s_power_is_measured(run_with_thresholds, digits_test):
    run = run_with_thresholds(0.0, 0.0)
    answers, summary = classify(run, digits_test[0][:5].astype(np.float32), power=FakeSensor(7.0))
    assert summary.measured_energy_label == "measured" and summary.power_w == 7.0
    for a in answers:
        assert a.measured_energy_label == "measured" and len(a.stage_latency_ms) == 1
        assert a.measured_energy_mj == pytest.approx(7.0 * a.stage_latency_ms[0])


def test_every_answer_gets_its_stages_measured_beside_the_prediction(
    run_with_thresholds, digits_test
):
    run = run_with_thresholds(INF, 0.0)  # nobody exits at stage 1: everyone runs both
    answers, summary = classify(run, digits_test[0][:6].astype(np.float32))
    predicted = run.stages[0].energy_mj + run.stages[1].energy_mj
    for a in answers:
        assert a.stage == "stage2" and len(a.stage_latency_ms) == 2
        assert all(ms > 0 for ms in a.stage_latency_ms)
        assert a.measured_energy_mj > 0 and a.compute_energy_mj == pytest.approx(predicted)
        assert a.measured_energy_label in ("measured", DECLARED_LABEL) and a.energy_label == ""
    assert summary.predicted_compute_mj_per_image == pytest.approx(predicted)
    assert summary.measured_energy_mj_per_image == pytest.approx(
        sum(a.measured_energy_mj for a in answers) / 6
    )
    assert math.isfinite(summary.measured_over_predicted) and summary.measured_over_predicted > 0
    assert (summary.runtime, summary.threads) == (run.runtime, run.threads)


@pytest.mark.parametrize("runtime", [None, "onnxruntime", "torch", "torchscript"])
def test_classify_json_labels_a_run_in_another_runtime_and_only_then(
    runtime, run_with_thresholds, digits_test, tmp_path, capsys
):
    run = run_with_thresholds(0.0, 0.0)
    np.save(tmp_path / "x.npy", digits_test[0][:3])
    extra = [] if runtime is None else ["--runtime", runtime]
    assert main(["classify", str(run.path), str(tmp_path / "x.npy"), "--json", *extra]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    ran = runtime or run.runtime
    expected = "" if ran == run.runtime else f"priced for {run.runtime}, run in {ran}"
    assert run.runtime == "onnxruntime"
    assert all(x["energy_label"] == expected for x in lines)  # answers and summary
    summary = lines[-1]
    assert summary["runtime"] == ran and summary["pricing"]["runtime"] == run.runtime
    assert summary["measured_energy_mj_per_image"] > 0
    assert all(x["measured_energy_mj"] > 0 for x in lines[:-1])


def test_classify_table_says_priced_for_x_run_in_y(
    run_with_thresholds, digits_test, tmp_path, capsys
):
    run = run_with_thresholds(0.0, 0.0)
    np.save(tmp_path / "x.npy", digits_test[0][:2])
    assert main(["classify", str(run.path), str(tmp_path / "x.npy"), "--runtime", "torch"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "energies priced for onnxruntime, run in torch"
    assert "(estimated, priced for onnxruntime, run in torch)" in out
    assert "mJ (latency)" in out and "from measured latency" in out
    assert main(["classify", str(run.path), str(tmp_path / "x.npy")]) == 0
    out = capsys.readouterr().out
    assert "priced for" not in out and "local compute in onnxruntime" in out


def test_classify_budget_runs_the_frontier_point_within_it(run, digits_test, tmp_path, capsys):
    """--budget: the most accurate frontier point within the budget runs, its own networks
    and thresholds, the cloud behind it as designed; a budget under the cheapest point is
    one line and exit 2."""
    from adaptive_cnn.errors import RunFolderError

    points = run.summary["frontier"]
    cheapest = min(points, key=lambda p: p["val_energy_mj"])
    switched = run.at_budget(cheapest["val_energy_mj"])
    assert [s.arch for s in switched.local_stages] == cheapest["stages"].split(" | ")
    assert switched.cloud_stage == run.cloud_stage
    assert switched.policy.thresholds == tuple(float(t) for t in cheapest["thresholds"].split())
    for stage in switched.local_stages:
        switched.load_network(stage)  # its own weights, written under frontier/
    top = run.at_budget(1e9)
    assert [s.arch for s in top.local_stages] == max(
        points, key=lambda p: (p["val_accuracy"], -p["val_energy_mj"])
    )["stages"].split(" | ")
    with pytest.raises(RunFolderError, match="cheapest costs"):
        run.at_budget(cheapest["val_energy_mj"] / 2)
    np.save(tmp_path / "x.npy", digits_test[0][:3])
    budget = f"{cheapest['val_energy_mj']}mJ"
    assert main(["classify", str(run.path), str(tmp_path / "x.npy"), "--budget", budget]) == 0
    captured = capsys.readouterr()
    assert "frontier point within" in captured.err and len(captured.out.splitlines()) >= 3
    low = f"{cheapest['val_energy_mj'] / 2}mJ"
    assert main(["classify", str(run.path), str(tmp_path / "x.npy"), "--budget", low]) == 2
    assert capsys.readouterr().err.startswith("acnn: error: no design of ")
    assert main(["classify", str(run.path), str(tmp_path / "x.npy"), "--budget", "-1mJ"]) == 2
