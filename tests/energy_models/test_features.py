"""Tests of layer tables and polynomial features against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from energy_models import Add, EnergyModelError, describe_network
from energy_models.features import (
    CALL_GROUPS,
    CONV_BASE,
    ELEMENTWISE_BASE,
    LINEAR_BASE,
    POOL_BASE,
    RAW_FIELDS,
    LayerTable,
    base_variables,
    call_group,
    feature_matrix,
    layer_row,
    model_kind,
    polynomial_features,
)


def _only(module: nn.Module, in_shape: tuple[int, ...]):
    (layer,) = describe_network(nn.Sequential(module), in_shape)
    return layer


def _row(**fields: float) -> np.ndarray:
    row = np.zeros(len(RAW_FIELDS))
    for name, value in fields.items():
        row[RAW_FIELDS.index(name)] = value
    return row


# --- feature names --------------------------------------------------------------------


def test_polynomial_features_of_two_variables() -> None:
    assert polynomial_features(("a", "b")) == (
        "1",
        "a",
        "b",
        "a^2",
        "a*b",
        "b^2",
        "log(a)",
        "log(b)",
    )


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(RAW_FIELDS), min_size=1, max_size=6, unique=True))
def test_polynomial_features_count_and_evaluate(base: list[str]) -> None:
    n = len(base)
    names = polynomial_features(tuple(base))
    # constant + linear + (n choose 2 with repetition) + logs
    assert len(names) == 1 + n + n * (n + 1) // 2 + n
    assert len(set(names)) == len(names)
    # every generated name is in the grammar feature_matrix evaluates
    assert feature_matrix(np.ones((2, len(RAW_FIELDS))), names).shape == (2, len(names))


# --- feature evaluation ---------------------------------------------------------------


def test_feature_matrix_on_hand_made_rows() -> None:
    values = np.stack(
        [
            _row(c_in=3, c_out=8, kernel=5, macs=99, h_in=4, w_in=6, h_out=2, w_out=3),
            _row(c_in=2, c_out=7, kernel=1, macs=0, h_in=1, w_in=1, h_out=1, w_out=1),
        ]
    )
    names = ["1", "macs", "c_in*c_out", "kernel^2", "log(macs)", "hw_in", "hw_out", "c_in*hw_out"]
    expected = np.array(
        [
            [1, 99, 24, 25, math.log(100), 24, 6, 18],
            [1, 0, 14, 1, 0.0, 1, 1, 2],
        ]
    )
    np.testing.assert_allclose(feature_matrix(values, names), expected, rtol=1e-12)


def test_feature_matrix_of_no_names_has_zero_columns() -> None:
    assert feature_matrix(np.zeros((3, len(RAW_FIELDS))), []).shape == (3, 0)


@pytest.mark.parametrize("name", ["bogus", "log(bogus)", "bogus^2", "macs*bogus", "bogus*macs"])
def test_unknown_feature_variable_is_an_error(name: str) -> None:
    with pytest.raises(EnergyModelError, match="unknown feature variable 'bogus'"):
        feature_matrix(np.zeros((1, len(RAW_FIELDS))), [name])


# --- model kinds and groups -----------------------------------------------------------


@pytest.mark.parametrize(
    ("conv", "kind"),
    [
        (nn.Conv2d(8, 8, 3, groups=8), "conv2d_depthwise"),
        (nn.Conv2d(8, 16, 3, groups=8), "conv2d_depthwise"),  # channel multiplier 2
        (nn.Conv2d(8, 8, 3, groups=2), "conv2d"),  # grouped, not depthwise
        (nn.Conv2d(8, 4, 3), "conv2d"),
        (nn.Conv2d(1, 4, 3), "conv2d"),  # groups == in_channels == 1 is a plain conv
    ],
)
def test_model_kind_separates_depthwise_convs(conv: nn.Conv2d, kind: str) -> None:
    assert model_kind(_only(conv, (conv.in_channels, 6, 6))) == kind


def test_model_kind_of_other_layers_is_their_kind() -> None:
    assert model_kind(_only(nn.ReLU(), (2, 3, 3))) == "relu"
    assert model_kind(_only(nn.Linear(4, 2), (4,))) == "linear"


@pytest.mark.parametrize(
    ("kind", "group"),
    [
        ("conv2d", "conv"),
        ("conv2d_depthwise", "conv"),
        ("linear", "linear"),
        ("batchnorm2d", "norm"),
        ("relu", "activation"),
        ("gelu", "activation"),
        ("hardsigmoid", "activation"),
        ("maxpool2d", "pool"),
        ("adaptiveavgpool2d", "pool"),
        ("add", "merge"),
        ("mul", "merge"),
        ("flatten", "other"),
        ("dropout", "other"),
        ("never-heard-of-it", "other"),
    ],
)
def test_call_group(kind: str, group: str) -> None:
    assert call_group(kind) == group
    assert group in CALL_GROUPS


@pytest.mark.parametrize(
    ("kind", "base"),
    [
        ("conv2d", CONV_BASE),
        ("conv2d_depthwise", CONV_BASE),
        ("linear", LINEAR_BASE),
        ("avgpool2d", POOL_BASE),
        ("adaptivemaxpool2d", POOL_BASE),
        ("relu", ELEMENTWISE_BASE),
        ("add", ELEMENTWISE_BASE),
    ],
)
def test_base_variables(kind: str, base: tuple[str, ...]) -> None:
    assert base_variables(kind) == base


# --- rows -----------------------------------------------------------------------------


def test_layer_row_of_a_strided_grouped_conv() -> None:
    layer = _only(nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), (4, 9, 7))
    # out: floor((9 + 2 - 3) / 2) + 1 = 5, floor((7 + 2 - 3) / 2) + 1 = 4
    macs = 6 * 5 * 4 * (4 // 2) * 9
    params = 6 * 2 * 9 + 6
    expected = dict(
        c_in=4,
        h_in=9,
        w_in=7,
        c_out=6,
        h_out=5,
        w_out=4,
        kernel=3,
        stride=2,
        padding=1,
        groups=2,
        params=params,
        macs=macs,
        in_elements=4 * 9 * 7,
        out_elements=6 * 5 * 4,
        n_inputs=1,
        ceil_mode=0,
    )
    assert layer_row(layer) == tuple(expected[name] for name in RAW_FIELDS)


def test_layer_row_of_a_linear_layer_uses_features_as_channels() -> None:
    row = dict(zip(RAW_FIELDS, layer_row(_only(nn.Linear(12, 5), (12,))), strict=True))
    assert (row["c_in"], row["h_in"], row["w_in"]) == (12, 1, 1)
    assert (row["c_out"], row["h_out"], row["w_out"]) == (5, 1, 1)
    assert (row["macs"], row["params"]) == (60, 65)


class _Residual(nn.Module):
    """conv -> bn -> relu, added to the input: 4 layers, one of each merge/norm/act/conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.ReLU()
        self.add = Add()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.add(x, self.act(self.bn(self.conv(x))))


def test_layer_row_of_add_counts_both_inputs() -> None:
    layers = describe_network(_Residual(4), (4, 6, 6))
    add = layers[-1]
    row = dict(zip(RAW_FIELDS, layer_row(add), strict=True))
    assert (row["n_inputs"], row["in_elements"], row["out_elements"]) == (2, 2 * 144, 144)


# --- tables ---------------------------------------------------------------------------


def _net_a() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),  # 8*8*4*9 = 2304 MACs
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, groups=4),  # depthwise: 8*8*4*1*9 = 2304 MACs
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 10),  # 640 MACs
    )


def _two_networks() -> LayerTable:
    a = describe_network(_net_a(), (1, 8, 8))
    b = describe_network(_Residual(4), (4, 6, 6))  # conv: 6*6*4*4*9 = 5184 MACs
    return LayerTable.from_networks([a, b, []])


def test_table_rows_kinds_and_names() -> None:
    table = _two_networks()
    assert len(table) == 7 + 4
    assert table.n_networks == 3
    assert table.values.shape == (11, len(RAW_FIELDS))
    assert table.network.tolist() == [0] * 7 + [1] * 4
    assert table.kinds.tolist() == [
        "conv2d",
        "relu",
        "conv2d_depthwise",
        "relu",
        "maxpool2d",
        "flatten",
        "linear",
        "conv2d",
        "batchnorm2d",
        "relu",
        "add",
    ]
    assert table.names == ("0", "1", "2", "3", "4", "5", "6", "conv", "bn", "act", "add")
    assert table.mask("relu").tolist() == [False, True, False, True] + [False] * 5 + [True, False]


def test_table_group_counts_by_hand() -> None:
    counts = _two_networks().group_counts()
    by_group = [dict(zip(CALL_GROUPS, row, strict=True)) for row in counts]
    assert by_group[0] == dict(
        conv=2, linear=1, norm=0, activation=2, pool=1, merge=0, other=1
    )  # "other" is the flatten
    assert by_group[1] == dict(conv=1, linear=0, norm=1, activation=1, pool=0, merge=1, other=0)
    assert by_group[2] == dict.fromkeys(CALL_GROUPS, 0)


def test_table_sum_per_network_by_hand() -> None:
    table = _two_networks()
    np.testing.assert_array_equal(table.sum_per_network(np.ones(len(table))), [7, 4, 0])
    macs = table.sum_per_network(table.column("macs"))
    np.testing.assert_array_equal(macs, [2304 + 2304 + 640, 5184, 0])


def test_table_of_no_networks_is_empty() -> None:
    table = LayerTable.from_networks([])
    assert len(table) == 0 and table.values.shape == (0, len(RAW_FIELDS))
    assert table.group_counts().shape == (0, len(CALL_GROUPS))
