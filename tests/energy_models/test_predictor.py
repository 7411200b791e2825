"""Tests of the layer-wise predictor: closed-form predictions and its versioned file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from energy_models import EnergyModelError, describe_network
from energy_models.features import CALL_GROUPS, RAW_FIELDS, LayerTable
from energy_models.predictor import (
    FORMAT_NAME,
    FORMAT_VERSION,
    EnergyPredictor,
    FlopsBaseline,
    LayerModel,
    NetworkModel,
    PolynomialModel,
)


def _constant(value: float) -> PolynomialModel:
    return PolynomialModel(("1",), (value,), floor=value / 2)


def _layer(kind: str, runtime: PolynomialModel, power_w: float) -> LayerModel:
    return LayerModel(kind, runtime, _constant(power_w), 20, 1.5, 0.5)


def _predictor(network: NetworkModel | None = None) -> EnergyPredictor:
    """conv2d: 0.01 + 1e-6 * MACs ms at 5 W; relu 0.002 ms at 3 W; flatten 0.0005 ms at 2 W;
    linear 0.005 + 2e-6 * MACs ms at 4 W; layer scale 1.2, 3 us per conv call, 1 us per
    activation call, 50 us per inference at 2.5 W."""
    return EnergyPredictor(
        device="test-board",
        runtime="torch",
        threads=2,
        torch_version="2.x",
        created="2024-01-01",
        power_source="declared",
        estimated=True,
        layers={
            "conv2d": _layer("conv2d", PolynomialModel(("1", "macs"), (0.01, 1e-6), 0.001), 5.0),
            "relu": _layer("relu", _constant(0.002), 3.0),
            "flatten": _layer("flatten", _constant(0.0005), 2.0),
            "linear": _layer("linear", PolynomialModel(("macs", "1"), (2e-6, 0.005), 0.001), 4.0),
        },
        network=network
        or NetworkModel(
            scale=dict.fromkeys(CALL_GROUPS, 1.2),
            knee_ms=1.0,
            discount=0.5,
            per_call_ms={"conv": 0.003, "activation": 0.001},
            overhead_ms=0.05,
            overhead_power_w=2.5,
        ),
        flops_baseline=FlopsBaseline(0.5, 0.4, 0.01, 4.0),
        fit_networks=("net-a", "net-b"),
        provenance={"profile": "/tmp/profile", "layer_records": 20, "folds": 5},
    )


def _small_net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10))


def _small_table() -> LayerTable:
    return LayerTable.from_networks([describe_network(_small_net(), (1, 8, 8)), []])


# Hand computation for _small_net on (1, 8, 8):
CONV_MACS = 8 * 8 * 4 * 1 * 9  # 2304
LINEAR_MACS = 256 * 10
LAYER_MS = [0.01 + 1e-6 * CONV_MACS, 0.002, 0.0005, 0.005 + 2e-6 * LINEAR_MACS]
LAYER_W = [5.0, 3.0, 2.0, 4.0]


def test_predict_table_matches_the_closed_form() -> None:
    prediction = _predictor().predict_table(_small_table())
    np.testing.assert_allclose(prediction.layer_latency_ms, LAYER_MS, rtol=1e-12)
    np.testing.assert_allclose(prediction.layer_power_w, LAYER_W, rtol=1e-12)
    overhead = 0.003 * 1 + 0.001 * 1 + 0.05  # one conv call, one activation call
    latency = 1.2 * sum(LAYER_MS) + overhead
    energy = 1.2 * sum(t * p for t, p in zip(LAYER_MS, LAYER_W, strict=True)) + overhead * 2.5
    # the second network has no layers: only the fixed overhead remains
    np.testing.assert_allclose(prediction.overhead_ms, [overhead, 0.05], rtol=1e-12)
    np.testing.assert_allclose(prediction.latency_ms, [latency, 0.05], rtol=1e-12)
    np.testing.assert_allclose(prediction.energy_mj, [energy, 0.05 * 2.5], rtol=1e-12)
    np.testing.assert_allclose(prediction.power_w, [energy / latency, 2.5], rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    scale=st.floats(0.1, 10),
    per_conv=st.floats(0, 1),
    per_act=st.floats(0, 1),
    per_other=st.floats(0, 1),
    fixed=st.floats(0, 5),
    power=st.floats(0, 50),
)
def test_energy_splits_into_layers_and_overheads(
    scale: float, per_conv: float, per_act: float, per_other: float, fixed: float, power: float
) -> None:
    per_call = {"conv": per_conv, "activation": per_act, "other": per_other}
    net = NetworkModel(dict.fromkeys(CALL_GROUPS, scale), 1.0, 0.0, per_call, fixed, power)
    prediction = _predictor(net).predict_table(_small_table())
    overhead = per_conv + per_act + per_other + fixed  # one call each (flatten is "other")
    layer_energy = scale * sum(t * p for t, p in zip(LAYER_MS, LAYER_W, strict=True))
    assert prediction.overhead_ms[0] == pytest.approx(overhead, rel=1e-9, abs=1e-12)
    assert prediction.latency_ms[0] == pytest.approx(scale * sum(LAYER_MS) + overhead, rel=1e-9)
    assert prediction.energy_mj[0] == pytest.approx(layer_energy + overhead * power, rel=1e-9)


def test_polynomial_model_is_clipped_at_its_floor() -> None:
    model = PolynomialModel(("1", "macs"), (0.01, -1e-6), floor=0.004)
    values = np.zeros((3, len(RAW_FIELDS)))
    values[:, RAW_FIELDS.index("macs")] = [1000, 5000, 9000]
    # 0.01 - 0.001 = 0.009; 0.01 - 0.005 = 0.005; 0.01 - 0.009 = 0.001 -> floor 0.004
    np.testing.assert_allclose(model.predict(values), [0.009, 0.005, 0.004], rtol=1e-12)
    assert model.size == 2


def test_all_zero_polynomial_predicts_its_floor() -> None:
    model = PolynomialModel(("1", "macs"), (0.0, 0.0), floor=0.25)
    assert model.size == 0
    np.testing.assert_array_equal(model.predict(np.ones((2, len(RAW_FIELDS)))), [0.25, 0.25])


def test_floor_applies_inside_predict_table() -> None:
    predictor = _predictor()
    layers = dict(predictor.layers)
    layers["relu"] = _layer("relu", PolynomialModel(("1",), (-1.0,), floor=0.0001), 3.0)
    clipped = replace(predictor, layers=layers)
    prediction = clipped.predict_table(_small_table())
    assert prediction.layer_latency_ms[1] == 0.0001


def test_polynomial_model_checks_its_arguments() -> None:
    with pytest.raises(EnergyModelError, match="2 features but 1 coefficients"):
        PolynomialModel(("1", "macs"), (1.0,), 0.0)
    with pytest.raises(EnergyModelError, match="finite"):
        PolynomialModel(("1",), (float("nan"),), 0.0)
    with pytest.raises(EnergyModelError, match="finite"):
        PolynomialModel(("1",), (1.0,), float("inf"))


def test_a_kind_without_a_model_is_named() -> None:
    net = nn.Sequential(nn.Conv2d(2, 2, 3, groups=2), nn.Sigmoid())
    table = LayerTable.from_networks([describe_network(net, (2, 5, 5))])
    with pytest.raises(EnergyModelError, match="conv2d_depthwise, sigmoid") as info:
        _predictor().predict_table(table)
    assert "known: conv2d, flatten, linear, relu" in str(info.value)


def test_source_says_estimated_or_measured() -> None:
    predictor = _predictor()
    assert predictor.source == (
        "layer-wise predictor for test-board/torch/2 threads; power declared (estimated)"
    )
    measured = replace(predictor, estimated=False, power_source="rapl")
    assert measured.source.endswith("power rapl (measured)")


def test_flops_baseline_latency() -> None:
    base = FlopsBaseline(
        ms_per_mmac=0.5, affine_ms_per_mmac=0.4, affine_intercept_ms=0.01, power_w=4
    )
    np.testing.assert_allclose(base.latency_ms([2e6, 3e6]), [1.0, 1.5])
    np.testing.assert_allclose(base.latency_ms([2e6, 3e6], affine=True), [0.81, 1.21])


# --- the file -------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path: Path) -> None:
    predictor = _predictor()
    path = predictor.save(tmp_path / "predictor.json")
    assert path == tmp_path / "predictor.json"
    assert [p.name for p in tmp_path.iterdir()] == ["predictor.json"]  # no temporary left
    data = json.loads(path.read_text())
    assert (data["format"], data["format_version"]) == (FORMAT_NAME, FORMAT_VERSION)
    loaded = EnergyPredictor.load(path)
    assert loaded == predictor
    np.testing.assert_array_equal(
        loaded.predict_table(_small_table()).energy_mj,
        predictor.predict_table(_small_table()).energy_mj,
    )


def test_save_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "predictor.json"
    path.write_text("old contents")
    _predictor().save(path)
    assert EnergyPredictor.load(path) == _predictor()


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    return path


def test_load_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EnergyModelError, match="does not exist"):
        EnergyPredictor.load(tmp_path / "nope.json")


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage"])
def test_load_refuses_a_file_that_is_not_json(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "p.json"
    path.write_bytes(content)
    with pytest.raises(EnergyModelError, match="is not valid JSON"):
        EnergyPredictor.load(path)


@pytest.mark.parametrize("data", [{"format": "something-else"}, {}, [1, 2], "text"])
def test_load_refuses_another_format(tmp_path: Path, data: object) -> None:
    with pytest.raises(EnergyModelError, match="not an acnn energy predictor"):
        EnergyPredictor.load(_write(tmp_path, data))


def test_load_refuses_another_format_version(tmp_path: Path) -> None:
    data = {**_predictor().to_dict(), "format_version": FORMAT_VERSION + 1}
    with pytest.raises(EnergyModelError, match=f"version {FORMAT_VERSION + 1}") as info:
        EnergyPredictor.load(_write(tmp_path, data))
    assert f"reads version {FORMAT_VERSION}" in str(info.value)
    assert str(tmp_path / "p.json") in str(info.value)


def _without_network(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "network"}


def _set(path: tuple[str, ...], value: object):
    def edit(d: dict) -> dict:
        target = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return d

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_without_network, "malformed predictor: KeyError"),
        (_set(("layers",), [1, 2]), "malformed predictor"),
        (_set(("threads",), None), "malformed predictor: TypeError"),
        (_set(("flops_baseline", "extra"), 1.0), "malformed predictor: TypeError"),
        (_set(("layers", "relu", "runtime", "coefficients"), [1.0, 2.0]), "1 features but 2"),
        (_set(("network", "per_call_ms", "gpu_launch"), 0.1), "unknown overhead groups"),
    ],
)
def test_load_refuses_malformed_content(tmp_path: Path, edit, message: str) -> None:
    path = _write(tmp_path, edit(_predictor().to_dict()))
    with pytest.raises(EnergyModelError, match=message) as info:
        EnergyPredictor.load(path)
    assert str(info.value).startswith(f"{path}: ")


def test_load_refuses_a_directory_and_suspicious_values(tmp_path: Path) -> None:
    with pytest.raises(EnergyModelError, match="cannot read predictor"):
        EnergyPredictor.load(tmp_path)
    good = _predictor().to_dict()
    cases = {
        "format_version": lambda d: d.update(format_version=True),
        "knee_ms": lambda d: d["network"].update(knee_ms=float("nan")),
        "ms_per_mmac": lambda d: d["flops_baseline"].update(ms_per_mmac="abc"),
        "unknown feature": lambda d: next(iter(d["layers"].values()))["runtime"].update(
            features=["bogus"], coefficients=[1.0]
        ),
        "says it is for": lambda d: d["layers"].update(other=next(iter(d["layers"].values()))),
    }
    for message, damage in cases.items():
        data = json.loads(json.dumps(good))
        damage(data)
        with pytest.raises(EnergyModelError, match=message if " " in message else "."):
            EnergyPredictor.load(_write(tmp_path, data))


def test_in_network_share_stops_inflating_past_the_knee() -> None:
    net = NetworkModel(dict.fromkeys(CALL_GROUPS, 1.5), 0.2, 0.4, {}, 0.0, 0.0)
    conv, pool = CALL_GROUPS.index("conv"), CALL_GROUPS.index("pool")
    shares = net.shares_ms(np.asarray([0.1, 1.0, 10.0]), np.asarray([conv, conv, pool]))
    # below the knee: 1.5 t; above: 1.5 t - 0.4 (t - 0.2)
    np.testing.assert_allclose(shares, [0.15, 1.5 - 0.4 * 0.8, 15.0 - 0.4 * 9.8])
    steep = NetworkModel(dict.fromkeys(CALL_GROUPS, 1.0), 0.0, 2.0, {}, 0.0, 0.0)
    assert steep.shares_ms(np.asarray([1.0]), np.asarray([conv]))[0] == 0.0  # never negative


@pytest.mark.parametrize("bad", [1e308, -1e13, float("nan"), float("inf")])
def test_load_refuses_absurd_or_non_finite_terms_naming_file_and_key(tmp_path, bad) -> None:
    data = _predictor().to_dict()
    data["layers"]["conv2d"]["runtime"]["coefficients"][1] = bad
    path = _write(tmp_path, data)  # json writes nan/inf as NaN/Infinity, which it reads back
    with pytest.raises(EnergyModelError) as info:
        EnergyPredictor.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: layers.conv2d.runtime.coefficients[1] is ")
    assert "1e+12" in message


def test_load_refuses_an_absurd_network_term(tmp_path) -> None:
    data = _predictor().to_dict()
    data["network"]["per_call_ms"]["conv"] = 5e12
    with pytest.raises(EnergyModelError, match=r"network\.per_call_ms\.conv is 5e\+12"):
        EnergyPredictor.load(_write(tmp_path, data))


def test_a_prediction_that_overflows_is_an_error_not_inf() -> None:
    squared = PolynomialModel(("macs*macs",), (1e12,), 0.0)  # every term within the bound
    predictor = replace(
        _predictor(), layers={**_predictor().layers, "conv2d": _layer("conv2d", squared, 5.0)}
    )
    table = _small_table()
    huge = replace(table, values=table.values * 1e200)  # MACs**2 overflows float64
    with pytest.raises(EnergyModelError, match="not a finite number"):
        predictor.predict_table(huge)
