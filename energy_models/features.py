"""Layer tables and the polynomial features of the layer-wise predictors (pure numpy).

A :class:`LayerTable` holds the layers of many networks as one numeric matrix (one row per
executed layer, columns :data:`RAW_FIELDS`) plus each row's model kind and network index,
so that thousands of candidate networks are predicted with a few array operations.

Features are named by a small grammar that a predictor file stores and this module
evaluates without executing code: ``"1"`` (constant), a variable (``"macs"``), a product
(``"macs*c_out"``), a square (``"kernel^2"``) or a log term (``"log(macs)"`` = ln(1 + x)).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations_with_replacement

import numpy as np

from energy_models.errors import EnergyModelError
from energy_models.layers import LayerDescriptor

RAW_FIELDS = (
    "c_in",
    "h_in",
    "w_in",
    "c_out",
    "h_out",
    "w_out",
    "kernel",
    "stride",
    "padding",
    "groups",
    "params",
    "macs",
    "in_elements",
    "out_elements",
    "n_inputs",
    "ceil_mode",
)
_COLUMN = {name: i for i, name in enumerate(RAW_FIELDS)}
DERIVED = ("hw_in", "hw_out")

CONV_BASE = ("macs", "params", "in_elements", "out_elements", "c_in", "c_out", "kernel", "hw_out")
LINEAR_BASE = ("macs", "c_in", "c_out")
POOL_BASE = ("in_elements", "out_elements", "kernel", "c_in")
ELEMENTWISE_BASE = ("in_elements", "c_in", "hw_in")
_POOL_KINDS = {"maxpool2d", "avgpool2d", "adaptiveavgpool2d", "adaptivemaxpool2d"}

# Kinds whose per-call overhead the network-level model fits separately.
CALL_GROUPS = ("conv", "linear", "norm", "activation", "pool", "merge", "other")
_GROUP_OF = {
    "conv2d": "conv",
    "conv2d_depthwise": "conv",
    "linear": "linear",
    "batchnorm2d": "norm",
    "add": "merge",
    "mul": "merge",
    "flatten": "other",
    "identity": "other",
    "dropout": "other",
}
_ACTIVATIONS = {
    "relu",
    "relu6",
    "leakyrelu",
    "silu",
    "sigmoid",
    "hardswish",
    "hardsigmoid",
    "tanh",
    "gelu",
}


def model_kind(layer: LayerDescriptor) -> str:
    """The predictor model a layer uses: its kind, with depthwise convs apart."""
    if layer.kind == "conv2d" and layer.groups > 1 and layer.groups == layer.in_channels:
        return "conv2d_depthwise"
    return layer.kind


def layer_kind_of(kind: str) -> str:
    """The layer kind a model kind is built on: a kernel kind of a fused runtime drops its
    memory-layout suffix (``conv2d_nchwc`` -> ``conv2d``); a reorder is ``reorder``."""
    kind = kind.removesuffix("_nchwc")
    return "reorder" if kind.startswith("reorder_") else kind


def call_group(kind: str) -> str:
    """The overhead group of a model kind (one of :data:`CALL_GROUPS`)."""
    kind = layer_kind_of(kind)
    if kind in _ACTIVATIONS:
        return "activation"
    if kind in _POOL_KINDS:
        return "pool"
    return _GROUP_OF.get(kind, "other")


def base_variables(kind: str) -> tuple[str, ...]:
    """The hyper-parameters, FLOP and memory terms a kind's polynomial is built from."""
    kind = layer_kind_of(kind)
    if kind.startswith("conv2d"):
        return CONV_BASE
    if kind == "linear":
        return LINEAR_BASE
    if kind in _POOL_KINDS:
        return POOL_BASE
    return ELEMENTWISE_BASE


def polynomial_features(base: Sequence[str]) -> tuple[str, ...]:
    """Constant, linear, degree-2 and log terms of ``base``, as feature names."""
    names = ["1", *base]
    for a, b in combinations_with_replacement(base, 2):
        names.append(f"{a}^2" if a == b else f"{a}*{b}")
    names += [f"log({a})" for a in base]
    return tuple(names)


def _shape3(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) == 3:
        return shape[0], shape[1], shape[2]
    if len(shape) == 1:
        return shape[0], 1, 1
    return math.prod(shape), 1, 1


def layer_row(layer: LayerDescriptor) -> tuple[float, ...]:
    """The :data:`RAW_FIELDS` of one layer, per image."""
    c_in, h_in, w_in = _shape3(layer.in_shape)
    c_out, h_out, w_out = _shape3(layer.out_shape)
    in_elements = layer.n_inputs * math.prod(layer.in_shape)
    return (
        layer.in_channels if layer.kind in ("conv2d", "linear") else c_in,
        h_in,
        w_in,
        layer.out_channels if layer.kind in ("conv2d", "linear") else c_out,
        h_out,
        w_out,
        layer.kernel,
        layer.stride,
        layer.padding,
        layer.groups,
        layer.params,
        layer.macs,
        in_elements,
        layer.elements,
        layer.n_inputs,
        float(layer.ceil_mode),
    )


@dataclass(frozen=True)
class LayerTable:
    """The layers of ``n_networks`` networks, one row per executed layer.

    Attributes:
        kinds: (n_layers,) model kind of each row (see :func:`model_kind`).
        values: (n_layers, len(RAW_FIELDS)) float64 raw fields per image.
        network: (n_layers,) int index of the network each row belongs to.
        n_networks: number of networks (a network may have no rows).
        names: (n_layers,) module path of each row, for per-layer breakdowns.
    """

    kinds: np.ndarray
    values: np.ndarray
    network: np.ndarray
    n_networks: int
    names: tuple[str, ...] = ()

    @classmethod
    def from_networks(cls, networks: Sequence[Sequence[LayerDescriptor]]) -> LayerTable:
        """Build the table of many networks' descriptors (network i = ``networks[i]``)."""
        rows: list[tuple[float, ...]] = []
        kinds: list[str] = []
        index: list[int] = []
        names: list[str] = []
        for i, layers in enumerate(networks):
            for layer in layers:
                rows.append(_cached_row(layer))
                kinds.append(model_kind(layer))
                index.append(i)
                names.append(layer.name)
        values = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(RAW_FIELDS))
        return cls(
            kinds=np.asarray(kinds, dtype=object),
            values=values,
            network=np.asarray(index, dtype=np.int64),
            n_networks=len(networks),
            names=tuple(names),
        )

    def __len__(self) -> int:
        return len(self.kinds)

    def column(self, name: str) -> np.ndarray:
        """One raw field of every row."""
        return self.values[:, _COLUMN[name]]

    def mask(self, kind: str) -> np.ndarray:
        """Boolean mask of the rows of one model kind."""
        return self.kinds == kind

    def group_index(self) -> np.ndarray:
        """(n_layers,) index into :data:`CALL_GROUPS` of each row's overhead group."""
        index = np.zeros(len(self), dtype=np.int64)
        for kind in set(self.kinds.tolist()):
            index[self.mask(kind)] = CALL_GROUPS.index(call_group(kind))
        return index

    def group_counts(self) -> np.ndarray:
        """(n_networks, len(CALL_GROUPS)) number of layer calls per overhead group."""
        counts = np.zeros((self.n_networks, len(CALL_GROUPS)))
        for kind in set(self.kinds.tolist()):
            g = CALL_GROUPS.index(call_group(kind))
            rows = self.network[self.mask(kind)]
            counts[:, g] += np.bincount(rows, minlength=self.n_networks)
        return counts

    def sum_per_network(self, per_row: np.ndarray) -> np.ndarray:
        """Sum a per-row quantity over each network's rows."""
        return np.bincount(self.network, weights=per_row, minlength=self.n_networks)


_ROW_CACHE: dict[LayerDescriptor, tuple[float, ...]] = {}
_ROW_CACHE_LIMIT = 200_000


def _cached_row(layer: LayerDescriptor) -> tuple[float, ...]:
    row = _ROW_CACHE.get(layer)
    if row is None:
        if len(_ROW_CACHE) >= _ROW_CACHE_LIMIT:
            _ROW_CACHE.clear()
        row = _ROW_CACHE[layer] = layer_row(layer)
    return row


def _variable(values: np.ndarray, name: str) -> np.ndarray:
    if name in _COLUMN:
        return values[:, _COLUMN[name]]
    if name == "hw_in":
        return values[:, _COLUMN["h_in"]] * values[:, _COLUMN["w_in"]]
    if name == "hw_out":
        return values[:, _COLUMN["h_out"]] * values[:, _COLUMN["w_out"]]
    raise EnergyModelError(
        f"unknown feature variable {name!r}; known: {', '.join(RAW_FIELDS + DERIVED)}"
    )


def _feature(values: np.ndarray, name: str) -> np.ndarray:
    if name == "1":
        return np.ones(len(values))
    if name.startswith("log(") and name.endswith(")"):
        return np.log1p(_variable(values, name[4:-1]))
    if name.endswith("^2"):
        return _variable(values, name[:-2]) ** 2
    if "*" in name:
        a, _, b = name.partition("*")
        return _variable(values, a) * _variable(values, b)
    return _variable(values, name)


def feature_matrix(values: np.ndarray, names: Iterable[str]) -> np.ndarray:
    """Evaluate named features on raw rows.

    Args:
        values: (n, len(RAW_FIELDS)) raw fields.
        names: feature names in the grammar of this module.

    Returns:
        (n, len(names)) float64 matrix.

    Raises:
        EnergyModelError: a name is not in the grammar.
    """
    columns = [_feature(values, name) for name in names]
    if not columns:
        return np.zeros((len(values), 0))
    return np.stack(columns, axis=1)
