"""Tests of held-out accuracy reports against errors chosen by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from torch import nn

from energy_models import LayerDescriptor, describe_network
from energy_models.accuracy import accuracy_report, layer_accuracy
from energy_models.features import CALL_GROUPS
from energy_models.layer_builder import descriptor_to_dict
from energy_models.predictor import (
    EnergyPredictor,
    FlopsBaseline,
    LayerModel,
    NetworkModel,
    PolynomialModel,
)

BASELINE = FlopsBaseline(
    ms_per_mmac=0.02, affine_ms_per_mmac=0.01, affine_intercept_ms=0.05, power_w=4.0
)


def _predictor(fit_networks: tuple[str, ...] = ("net-fit",)) -> EnergyPredictor:
    """conv2d: 0.01 + 2e-7 * MACs ms at 5 W (CV RMSPE 4.5%); relu 0.002 ms at 3 W; plus a
    fixed 0.05 ms at 2 W per inference."""
    conv = LayerModel(
        "conv2d",
        PolynomialModel(("1", "macs"), (0.01, 2e-7), 1e-4),
        PolynomialModel(("1",), (5.0,), 1.0),
        30,
        4.5,
        1.0,
    )
    relu = LayerModel(
        "relu",
        PolynomialModel(("1",), (0.002,), 1e-4),
        PolynomialModel(("1",), (3.0,), 1.0),
        9,
        0,
        0,
    )
    return EnergyPredictor(
        device="test-board",
        runtime="torch",
        threads=1,
        torch_version="2.x",
        created="2024-01-01",
        power_source="declared",
        estimated=True,
        layers={"conv2d": conv, "relu": relu},
        network=NetworkModel(dict.fromkeys(CALL_GROUPS, 1.0), 0.0, 0.0, {}, 0.05, 2.0),
        flops_baseline=BASELINE,
        fit_networks=fit_networks,
    )


def _stack(n_conv: int, n_relu: int, channels: int) -> tuple[LayerDescriptor, ...]:
    convs = [nn.Conv2d(1, channels, 3, padding=1)]
    convs += [nn.Conv2d(channels, channels, 3, padding=1) for _ in range(n_conv - 1)]
    return describe_network(nn.Sequential(*convs, *[nn.ReLU() for _ in range(n_relu)]), (1, 8, 8))


def _hand_latency_energy(layers: tuple[LayerDescriptor, ...]) -> tuple[float, float]:
    """The predictor's closed form, written out again: sum of layers plus 0.05 ms at 2 W."""
    latency, energy = 0.05, 0.05 * 2.0
    for d in layers:
        ms, watts = (0.01 + 2e-7 * d.macs, 5.0) if d.kind == "conv2d" else (0.002, 3.0)
        latency += ms
        energy += ms * watts
    return latency, energy


SHAPES = [(1, 0, 4), (2, 1, 8), (3, 3, 4), (1, 2, 16)]
LATENCY_ERRORS = [0.05, -0.2, 0.08, 0.3]  # (predicted - actual) / actual
ENERGY_ERRORS = [0.09, 0.09, -0.3, 0.0]
FAMILIES = ["a", "a", "b", "b"]


def _records() -> list[dict]:
    """Held-out networks whose measurements miss the prediction by the chosen errors, plus a
    network the predictor was fitted on, with absurd measurements that must be ignored."""
    records = []
    for i, shape in enumerate(SHAPES):
        layers = _stack(*shape)
        latency, energy = _hand_latency_energy(layers)
        records.append(
            {
                "id": f"net-{i}",
                "layers": [descriptor_to_dict(d) for d in layers],
                "macs": sum(d.macs for d in layers),
                "latency_ms": latency / (1 + LATENCY_ERRORS[i]),
                "energy_mj": energy / (1 + ENERGY_ERRORS[i]),
                "power_w": 4.0,
                "family": FAMILIES[i],
            }
        )
    fitted = {**records[0], "id": "net-fit", "latency_ms": 1e6, "energy_mj": 1e6, "family": "c"}
    return [*records, fitted]


def _mape(errors: list[float]) -> float:
    return 100 * sum(abs(e) for e in errors) / len(errors)


def test_network_errors_by_hand() -> None:
    report = accuracy_report(_predictor(), [], _records())
    assert (report.n_networks, report.n_excluded) == (4, 1)
    assert report.runtime.mape == pytest.approx(_mape(LATENCY_ERRORS))  # 15.75
    assert report.runtime.within_10pct == 50.0  # +5% and +8%
    rms = 100 * math.sqrt(sum(e * e for e in LATENCY_ERRORS) / 4)
    assert report.runtime.rmspe == pytest.approx(rms)
    assert report.energy.mape == pytest.approx(_mape(ENERGY_ERRORS))  # 12.0
    assert report.energy.within_10pct == 75.0  # 9%, 9% and 0%
    assert sorted(report.per_family) == ["a", "b"]
    assert report.per_family["a"].mape == pytest.approx(12.5)
    assert report.per_family["b"].mape == pytest.approx(19.0)


def test_power_error_compares_mean_predicted_power() -> None:
    report = accuracy_report(_predictor(), [], _records())
    errors = []
    for shape in SHAPES:
        latency, energy = _hand_latency_energy(_stack(*shape))
        errors.append(abs(energy / latency - 4.0) / 4.0)
    assert report.power.mape == pytest.approx(100 * np.mean(errors))


def test_flops_baseline_errors_by_hand() -> None:
    records = [r for r in _records() if r["id"] != "net-fit"]
    proportional, affine, energy = [], [], []
    for r in records:
        mmacs = r["macs"] / 1e6
        proportional.append(abs(0.02 * mmacs - r["latency_ms"]) / r["latency_ms"])
        affine.append(abs(0.01 * mmacs + 0.05 - r["latency_ms"]) / r["latency_ms"])
        energy.append(abs(0.02 * mmacs * 4.0 - r["energy_mj"]) / r["energy_mj"])
    report = accuracy_report(_predictor(), [], _records())
    assert report.flops_runtime.mape == pytest.approx(100 * np.mean(proportional))
    assert report.flops_affine_runtime.mape == pytest.approx(100 * np.mean(affine))
    assert report.flops_energy.mape == pytest.approx(100 * np.mean(energy))


def test_to_dict_has_the_headline_figures() -> None:
    report = accuracy_report(_predictor(), [], _records())
    d = report.to_dict()
    assert d["network_mape"] == report.runtime.mape
    assert d["within_10pct"] == report.runtime.within_10pct
    assert d["flops_baseline_mape"] == report.flops_runtime.mape
    assert d["flops_affine_baseline_mape"] == report.flops_affine_runtime.mape
    assert d["n_networks"] == 4 and d["n_excluded"] == 1
    assert d["energy_label"] == "estimated"
    assert d["predictor_source"] == _predictor().source


def test_all_networks_fitted_leaves_nothing_to_report() -> None:
    records = _records()
    report = accuracy_report(_predictor(tuple(r["id"] for r in records)), [], records)
    assert (report.n_networks, report.n_excluded) == (0, 5)
    assert math.isnan(report.runtime.mape) and math.isnan(report.runtime.within_10pct)
    assert report.per_family == {}


# --- layers ---------------------------------------------------------------------------


def _layer_records() -> list[dict]:
    convs = [describe_network(nn.Conv2d(c, 8, 3), (c, 10, 10))[0] for c in (1, 2, 4)]
    sigmoid = describe_network(nn.Sigmoid(), (4, 4, 4))[0]
    records = []
    for i, (d, error, watts) in enumerate(
        zip(convs, [0.1, -0.1, 5.0], [4.0, 5.0, 5.0], strict=True)
    ):
        records.append(
            {
                "id": f"conv-{i}",
                "layer": descriptor_to_dict(d),
                "latency_ms": (0.01 + 2e-7 * d.macs) / (1 + error),
                "power_w": watts,
            }
        )
    # a kind the predictor has no model for is left out, not an error
    records.append(
        {"id": "sig", "layer": descriptor_to_dict(sigmoid), "latency_ms": 1, "power_w": 1}
    )
    return records


def test_layer_accuracy_by_hand() -> None:
    (conv,) = layer_accuracy(_predictor(), _layer_records(), exclude={"conv-2"})
    assert (conv.kind, conv.n) == ("conv2d", 2)
    assert conv.runtime_rmspe == pytest.approx(10.0)  # errors +10% and -10%
    # predicted 5 W against measured 4 W and 5 W: errors +25% and 0%
    assert conv.power_rmspe == pytest.approx(100 * math.sqrt((0.25**2 + 0) / 2))
    assert (conv.runtime_terms, conv.power_terms, conv.cv_runtime_rmspe) == (2, 1, 4.5)


def test_layer_accuracy_in_the_report_uses_fit_layer_ids() -> None:
    report = accuracy_report(_predictor(), _layer_records(), _records(), fit_layer_ids={"conv-2"})
    assert [k.kind for k in report.layers] == ["conv2d"]
    assert report.layers[0].n == 2


def test_layer_accuracy_of_no_held_out_layers_is_empty() -> None:
    records = _layer_records()
    assert layer_accuracy(_predictor(), records, exclude={r["id"] for r in records}) == ()


def test_repeatability_compares_odd_with_even_rounds() -> None:
    from energy_models.accuracy import repeatability

    records = [
        {"round_medians_ms": [1.0, 1.05, 1.0, 1.05]},  # even rounds 1.0, odd 1.05: +5%
        {"round_medians_ms": [2.0, 2.0, 2.0]},  # agrees with itself
        {"round_medians_ms": [5.0]},  # one round: nothing to compare
        {},
    ]
    found = repeatability(records)
    assert found.mape == pytest.approx(2.5)
    assert found.within_10pct == pytest.approx(100.0)
