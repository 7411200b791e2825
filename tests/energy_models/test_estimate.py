"""Tests of ``energy_models.estimate.predict`` on custom modules, against hand computation."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

import pytest
from torch import nn

from energy_models import EnergyModelError, UnsupportedLayerError
from energy_models.estimate import predict
from energy_models.features import CALL_GROUPS
from energy_models.predictor import (
    EnergyPredictor,
    FlopsBaseline,
    LayerModel,
    NetworkModel,
    PolynomialModel,
)


def _layer(kind: str, runtime: PolynomialModel, power_w: float) -> LayerModel:
    return LayerModel(kind, runtime, PolynomialModel(("1",), (power_w,), 0.1), 10, 0.0, 0.0)


def _predictor() -> EnergyPredictor:
    """conv2d 0.01 + 1e-6 * MACs ms at 5 W, relu 0.002 ms at 3 W, flatten 0.0005 ms at 2 W,
    linear 0.005 + 2e-6 * MACs ms at 4 W; scale 1.5, 3 us per conv call, 40 us at 2.5 W."""
    return EnergyPredictor(
        device="test-board",
        runtime="torch",
        threads=1,
        torch_version="2.x",
        created="2024-01-01",
        power_source="declared",
        estimated=True,
        layers={
            "conv2d": _layer("conv2d", PolynomialModel(("1", "macs"), (0.01, 1e-6), 1e-4), 5.0),
            "relu": _layer("relu", PolynomialModel(("1",), (0.002,), 1e-4), 3.0),
            "flatten": _layer("flatten", PolynomialModel(("1",), (0.0005,), 1e-4), 2.0),
            "linear": _layer("linear", PolynomialModel(("macs", "1"), (2e-6, 0.005), 1e-4), 4.0),
        },
        network=NetworkModel(dict.fromkeys(CALL_GROUPS, 1.5), 0.0, 0.0, {"conv": 0.003}, 0.04, 2.5),
        flops_baseline=FlopsBaseline(1.0, 1.0, 0.0, 1.0),
    )


def _net() -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            stem=nn.Conv2d(2, 3, 3, stride=2, padding=1),  # (2,9,9) -> (3,5,5)
            act=nn.ReLU(),
            head=nn.Sequential(OrderedDict(flat=nn.Flatten(), fc=nn.Linear(75, 4))),
        )
    )


CONV_MACS = 3 * 5 * 5 * 2 * 9  # 1350
LINEAR_MACS = 75 * 4
LAYERS = [  # (name, kind, ms, W)
    ("stem", "conv2d", 0.01 + 1e-6 * CONV_MACS, 5.0),
    ("act", "relu", 0.002, 3.0),
    ("head.flat", "flatten", 0.0005, 2.0),
    ("head.fc", "linear", 0.005 + 2e-6 * LINEAR_MACS, 4.0),
]
OVERHEAD_MS = 0.003 + 0.04  # one conv call plus the fixed overhead
PARAMS = 3 * 2 * 9 + 3 + 75 * 4 + 4


def test_predict_a_custom_module_by_hand() -> None:
    estimate = predict(_net(), (2, 9, 9), _predictor())
    layer_ms = sum(ms for _, _, ms, _ in LAYERS)
    layer_mj = sum(ms * w for _, _, ms, w in LAYERS)
    latency = 1.5 * layer_ms + OVERHEAD_MS
    energy = 1.5 * layer_mj + OVERHEAD_MS * 2.5
    assert estimate.latency_ms == pytest.approx(latency, rel=1e-12)
    assert estimate.energy_mj == pytest.approx(energy, rel=1e-12)
    assert estimate.power_w == pytest.approx(energy / latency, rel=1e-12)
    assert estimate.overhead_ms == pytest.approx(OVERHEAD_MS, rel=1e-12)


def test_per_layer_breakdown_follows_module_paths() -> None:
    estimate = predict(_net(), (2, 9, 9), _predictor())
    assert [(e.name, e.kind) for e in estimate.layers] == [(n, k) for n, k, _, _ in LAYERS]
    for got, (_, _, ms, watts) in zip(estimate.layers, LAYERS, strict=True):
        assert got.latency_ms == pytest.approx(ms, rel=1e-12)
        assert got.power_w == watts
        assert got.energy_mj == pytest.approx(ms * watts, rel=1e-12)


def test_memory_uses_the_module_parameters() -> None:
    memory = predict(_net(), (2, 9, 9), _predictor()).memory
    assert memory.params == PARAMS
    assert memory.weight_bytes_fp32 == 4 * PARAMS
    # peak: the stem's input 162 + output 75 elements
    assert memory.peak_activation_bytes_int8 == 2 * 81 + 75


def test_estimated_flag_and_source_propagate() -> None:
    predictor = _predictor()
    estimate = predict(_net(), (2, 9, 9), predictor)
    assert estimate.estimated is True and estimate.source == predictor.source
    d = estimate.to_dict()
    assert (d["energy_label"], d["estimated"], d["source"]) == ("estimated", True, predictor.source)
    assert [layer["name"] for layer in d["layers"]] == ["stem", "act", "head.flat", "head.fc"]
    assert d["memory"]["params"] == PARAMS

    measured = replace(predictor, estimated=False, power_source="rapl")
    estimate = predict(_net(), (2, 9, 9), measured)
    assert estimate.estimated is False and "power rapl (measured)" in estimate.source
    assert estimate.energy_label == "predicted from measured power"


def test_unsupported_module_is_an_error() -> None:
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Softplus())
    with pytest.raises(UnsupportedLayerError, match="Softplus"):
        predict(net, (2, 9, 9), _predictor())


def test_kind_without_a_model_is_an_error() -> None:
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Tanh())
    with pytest.raises(EnergyModelError, match="no model for layer kind.*tanh"):
        predict(net, (2, 9, 9), _predictor())
