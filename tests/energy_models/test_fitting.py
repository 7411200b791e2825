"""Tests of predictor fitting on synthetic profiles that follow known closed forms."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from torch import nn

from energy_models import EnergyModelError, LayerDescriptor, describe_network
from energy_models.features import LayerTable
from energy_models.fitting import (
    MIN_NETWORKS,
    MIN_POLYNOMIAL_SAMPLES,
    attach_power_trace,
    fit_flops_baseline,
    fit_layer_models,
    fit_network_model,
    fit_polynomial,
    fit_predictor,
    network_tables,
    rmspe,
)
from energy_models.layer_builder import descriptor_to_dict
from energy_models.predictor import LayerModel, PolynomialModel
from energy_models.profile_store import ProfileData

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- synthetic profiles ---------------------------------------------------------------


def _convs(n: int, seed: int) -> list[LayerDescriptor]:
    """``n`` single conv layers of varied channels, kernels, strides, sizes and biases."""
    rng = np.random.default_rng(seed)
    layers = []
    for _ in range(n):
        c_in, c_out = int(rng.choice([1, 3, 8, 16, 32])), int(rng.choice([4, 8, 16, 32, 64]))
        kernel, stride = int(rng.choice([1, 3, 5])), int(rng.choice([1, 2]))
        size = int(rng.choice([8, 12, 16, 28, 32]))
        conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=bool(rng.random() < 0.5))
        layers.append(describe_network(conv, (c_in, size, size))[0])
    return layers


def _conv_ms(layer: LayerDescriptor) -> float:
    return 2e-7 * layer.macs + 0.01


def _layer_record(i: int, layer: LayerDescriptor, latency_ms: float, power_w: float, **extra):
    return {
        "id": f"layer-{i}",
        "layer": descriptor_to_dict(layer),
        "latency_ms": latency_ms,
        "power_w": power_w,
        "energy_mj": latency_ms * power_w,
        "power_source": "declared",
        "energy_label": "estimated",
        "noisy": False,
        "t0": 1000.0 + i,
        "t1": 1000.5 + i,
        **extra,
    }


def _conv_records(layers: list[LayerDescriptor], power_w: float = 7.5) -> list[dict[str, Any]]:
    return [_layer_record(i, d, _conv_ms(d), power_w) for i, d in enumerate(layers)]


def _poly(features: tuple[str, ...], coefficients: tuple[float, ...]) -> PolynomialModel:
    return PolynomialModel(features, coefficients, floor=1e-4)


# Hand-made layer models for the network-level fits: exactly the synthetic layer costs.
LAYER_MODELS = {
    "conv2d": LayerModel(
        "conv2d", _poly(("1", "macs"), (0.01, 2e-7)), _poly(("1",), (5.0,)), 9, 0, 0
    ),
    "relu": LayerModel("relu", _poly(("1",), (0.002,)), _poly(("1",), (3.0,)), 9, 0, 0),
}
# (convs, relus, channels): conv count, activation count and layer sum vary independently
NETWORK_SHAPES = [(1, 0, 4), (2, 1, 8), (3, 3, 4), (1, 2, 16), (4, 1, 8), (2, 2, 2), (3, 0, 16)]


def _network_layers(n_conv: int, n_relu: int, channels: int) -> tuple[LayerDescriptor, ...]:
    convs = [nn.Conv2d(1, channels, 3, padding=1)]
    convs += [nn.Conv2d(channels, channels, 3, padding=1) for _ in range(n_conv - 1)]
    return describe_network(nn.Sequential(*convs, *[nn.ReLU() for _ in range(n_relu)]), (1, 8, 8))


def _layer_sum_ms(layers: tuple[LayerDescriptor, ...]) -> float:
    return sum(_conv_ms(d) if d.kind == "conv2d" else 0.002 for d in layers)


def _network_records(shapes=NETWORK_SHAPES) -> list[dict[str, Any]]:
    records = []
    for i, shape in enumerate(shapes):
        layers = _network_layers(*shape)
        latency = 1.3 * _layer_sum_ms(layers) + 0.004 * shape[0] + 0.05
        records.append(
            {
                "id": f"net-{i}",
                "layers": [descriptor_to_dict(d) for d in layers],
                "macs": sum(d.macs for d in layers),
                "latency_ms": latency,
                "power_w": 6.0 + i,
                "energy_mj": latency * (6.0 + i),
                "family": "stack",
                "power_source": "declared",
                "energy_label": "estimated",
                "t0": 2000.0 + i,
                "t1": 2001.0 + i,
            }
        )
    return records


# --- rmspe ----------------------------------------------------------------------------


def test_rmspe_closed_form() -> None:
    # relative errors +10%, -10%, 0%, +50%
    value = rmspe(np.array([1.1, 0.9, 2.0, 3.0]), np.array([1.0, 1.0, 2.0, 2.0]))
    assert value == pytest.approx(100 * math.sqrt((0.01 + 0.01 + 0 + 0.25) / 4), rel=1e-12)


def test_rmspe_of_nothing_is_nan() -> None:
    assert math.isnan(rmspe(np.array([]), np.array([])))


# --- one polynomial -------------------------------------------------------------------


def _values(layers: list[LayerDescriptor]) -> np.ndarray:
    return LayerTable.from_networks([[d] for d in layers]).values


def test_fit_polynomial_refuses_non_positive_targets() -> None:
    values = _values(_convs(4, seed=1))
    with pytest.raises(EnergyModelError, match="conv2d: targets must be positive"):
        fit_polynomial(values, np.array([1.0, 0.0, 2.0, 3.0]), "conv2d")
    with pytest.raises(EnergyModelError, match="positive and finite"):
        fit_polynomial(values, np.array([1.0, np.inf, 2.0, 3.0]), "conv2d")


def test_constant_target_gives_a_constant_model() -> None:
    model, error = fit_polynomial(_values(_convs(20, seed=1)), np.full(20, 7.5), "conv2d")
    assert model == PolynomialModel(("1",), (7.5,), floor=3.75)
    assert error == 0.0


def test_few_samples_fit_constant_plus_first_base_variable_exactly() -> None:
    layers = _convs(MIN_POLYNOMIAL_SAMPLES - 4, seed=2)
    y = np.array([_conv_ms(d) for d in layers])
    model, error = fit_polynomial(_values(layers), y, "conv2d")
    assert model.features == ("1", "macs")
    np.testing.assert_allclose(model.coefficients, [0.01, 2e-7], rtol=1e-8)
    assert model.floor == pytest.approx(0.5 * y.min())
    assert error == pytest.approx(0.0, abs=1e-6)


def test_layer_models_recover_a_sparse_polynomial() -> None:
    layers = _convs(80, seed=0)
    models = fit_layer_models(_conv_records(layers[:60]))
    held_out = layers[60:]
    predicted = models["conv2d"].runtime.predict(_values(held_out))
    actual = np.array([_conv_ms(d) for d in held_out])
    np.testing.assert_allclose(predicted, actual, rtol=0.01)
    assert models["conv2d"].cv_rmspe_runtime < 1.0


def test_layer_models_one_per_kind_with_constant_power() -> None:
    convs = _convs(20, seed=3)
    relus = [describe_network(nn.ReLU(), (c, s, s))[0] for c, s in [(4, 8), (8, 4), (16, 2)]]
    records = _conv_records(convs, power_w=7.5) + [
        _layer_record(100 + i, d, 0.002, 3.0) for i, d in enumerate(relus)
    ]
    models = fit_layer_models(records)
    assert sorted(models) == ["conv2d", "relu"]
    assert (models["conv2d"].n_samples, models["relu"].n_samples) == (20, 3)
    assert models["conv2d"].power == PolynomialModel(("1",), (7.5,), floor=3.75)
    assert models["relu"].runtime == PolynomialModel(("1",), (0.002,), floor=0.001)
    assert models["relu"].power == PolynomialModel(("1",), (3.0,), floor=1.5)
    assert models["relu"].cv_rmspe_runtime == 0.0


def test_depthwise_convs_get_their_own_model() -> None:
    depthwise = [describe_network(nn.Conv2d(c, c, 3, groups=c), (c, 6, 6))[0] for c in (2, 4, 8)]
    records = _conv_records(_convs(3, seed=4)) + _conv_records(depthwise)
    assert sorted(fit_layer_models(records)) == ["conv2d", "conv2d_depthwise"]


def test_layer_models_need_records() -> None:
    with pytest.raises(EnergyModelError, match="no layer records"):
        fit_layer_models([])


# --- whole networks -------------------------------------------------------------------


def test_network_model_recovers_scale_and_overheads() -> None:
    records = _network_records()
    model = fit_network_model(LAYER_MODELS, records)
    # conv: its MACs term pins the scale apart from the per-call cost
    assert model.scale["conv"] == pytest.approx(1.3, rel=1e-3)
    assert model.per_call_ms["conv"] == pytest.approx(0.004, rel=1e-3)
    assert model.overhead_ms == pytest.approx(0.05, rel=1e-3)
    # relu runs a constant 0.002 ms: only its in-network total 1.3 x 0.002 is identifiable
    relu_ms = 0.002 * model.scale["activation"] + model.per_call_ms["activation"]
    assert relu_ms == pytest.approx(1.3 * 0.002, rel=1e-3)
    # no layer of these networks reaches the knee, so there is nothing to discount
    assert model.discount == 0.0
    assert model.overhead_power_w == float(np.median([r["power_w"] for r in records]))


def test_network_model_needs_enough_networks() -> None:
    records = _network_records()[: MIN_NETWORKS - 1]
    with pytest.raises(EnergyModelError, match=f"{MIN_NETWORKS - 1} network records; at least"):
        fit_network_model(LAYER_MODELS, records)


def test_network_tables_follow_record_order() -> None:
    records = _network_records()
    table = network_tables(records)
    assert table.n_networks == len(records)
    counts = table.sum_per_network(np.ones(len(table)))
    assert counts.tolist() == [c + r for c, r, _ in NETWORK_SHAPES]


def _flops_records(mmacs: list[float], latency: list[float], power: list[float]):
    return [
        {"id": f"n{i}", "macs": m * 1e6, "latency_ms": t, "power_w": p}
        for i, (m, t, p) in enumerate(zip(mmacs, latency, power, strict=True))
    ]


def test_flops_baseline_recovers_a_proportional_slope() -> None:
    mmacs = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    records = _flops_records(mmacs, [0.7 * m for m in mmacs], [4, 5, 6, 7, 8, 9])
    base = fit_flops_baseline(records)
    assert base.ms_per_mmac == pytest.approx(0.7, rel=1e-12)
    assert base.affine_ms_per_mmac == pytest.approx(0.7, rel=1e-9)
    assert base.affine_intercept_ms == pytest.approx(0.0, abs=1e-9)
    assert base.power_w == 6.5


def test_flops_baseline_on_affine_data() -> None:
    mmacs = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
    latency = 0.5 * mmacs + 0.2
    base = fit_flops_baseline(_flops_records(mmacs.tolist(), latency.tolist(), [1.0] * 5))
    assert (base.affine_ms_per_mmac, base.affine_intercept_ms) == pytest.approx((0.5, 0.2))
    # proportional slope minimising sum(((s*m - t) / t)^2): a second implementation
    (slope,), *_ = np.linalg.lstsq((mmacs / latency)[:, None], np.ones(5), rcond=None)
    assert base.ms_per_mmac == pytest.approx(slope, rel=1e-12)


# --- a whole profile ------------------------------------------------------------------


def _profile(layer_records, network_records) -> ProfileData:
    settings = {"device": "test-board", "runtime": "torch", "threads": 2, "torch_version": "2.x"}
    return ProfileData(Path("profile"), settings, tuple(layer_records), tuple(network_records))


def test_fit_predictor_end_to_end() -> None:
    relus = [describe_network(nn.ReLU(), (c, 8, 8))[0] for c in (2, 4, 8, 16)]
    layer_records = _conv_records(_convs(MIN_POLYNOMIAL_SAMPLES - 2, seed=5), power_w=5.0)
    layer_records += [_layer_record(50 + i, d, 0.002, 3.0) for i, d in enumerate(relus)]
    layer_records[-1] = {**layer_records[-1], "power_source": "rapl", "energy_label": "measured"}
    network_records = _network_records()
    predictor = fit_predictor(_profile(layer_records, network_records))

    assert (predictor.device, predictor.runtime, predictor.threads) == ("test-board", "torch", 2)
    assert predictor.power_source == "declared+rapl"
    assert predictor.estimated is True
    assert predictor.fit_networks == tuple(f"net-{i}" for i in range(len(NETWORK_SHAPES)))
    assert predictor.provenance["layer_records"] == len(layer_records)
    assert predictor.provenance["network_records"] == len(network_records)
    assert predictor.network.scale["conv"] == pytest.approx(1.3, rel=1e-3)
    prediction = predictor.predict_table(network_tables(network_records))
    np.testing.assert_allclose(
        prediction.latency_ms, [r["latency_ms"] for r in network_records], rtol=1e-6
    )


class _FakeTrace:
    """Power rises linearly with time: 10 W + 1 W per second (mean = value at midpoint)."""

    def mean_power_w(self, t0: float, t1: float) -> float:
        if t0 < 1000.0:
            raise EnergyModelError("trace does not cover the window")
        return 10.0 + ((t0 + t1) / 2 - 1000.0)


def test_attach_power_trace_replaces_power_and_energy() -> None:
    layers = _conv_records(_convs(2, seed=6))
    networks = _network_records()[:1]
    data = _profile(layers, networks)
    attached = attach_power_trace(data, _FakeTrace())
    first = attached.layers[0]
    assert first["power_w"] == pytest.approx(10.25)  # window [1000, 1000.5]
    assert attached.layers[1]["power_w"] == pytest.approx(11.25)  # window [1001, 1001.5]
    assert attached.networks[0]["power_w"] == pytest.approx(1010.5)  # window [2000, 2001]
    for record in (*attached.layers, *attached.networks):
        assert record["energy_mj"] == pytest.approx(record["latency_ms"] * record["power_w"])
        assert (record["power_source"], record["energy_label"]) == ("power-meter-csv", "measured")
    assert first["layer"] == layers[0]["layer"] and first["id"] == layers[0]["id"]
    assert (attached.root, attached.settings) == (data.root, data.settings)
    assert data.layers[0]["power_w"] == 7.5  # the input is left alone


def test_attach_power_trace_propagates_uncovered_windows() -> None:
    record = {**_conv_records(_convs(1, seed=7))[0], "t0": 10.0, "t1": 11.0}
    with pytest.raises(EnergyModelError, match="does not cover"):
        attach_power_trace(_profile([record], []), _FakeTrace())
