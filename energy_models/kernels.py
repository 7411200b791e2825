"""What ONNX Runtime executes: torch layers fused into the kernels its CPU provider runs.

ONNX Runtime does not run a network layer by layer. Its graph optimiser (level "all", the
default) folds batch norms into convolutions, fuses a following activation into the
convolution or gemm, rewrites convolutions and pools into the blocked ``NCHWc`` memory
layout of its MLAS library (inserting reorder kernels where the layout changes) and folds
a residual ``add`` into the convolution that produces one of its inputs. A layer timed
alone is therefore a poor proxy for its cost inside a network; the kernel-level predictor
(the nn-Meter approach) prices the kernels instead.

:func:`fuse_table` applies the fusion rules to a :class:`LayerTable` of torch layers and
returns the table of kernels, with the same numeric columns (a fused kernel carries its
anchor layer's row: the convolution's, the gemm's, the pool's), so the predictor's
polynomial machinery serves kernels unchanged. The rules were read off ONNX Runtime 1.32's
optimised graphs on x86-64, where the NCHWc block is 8 channels on AVX2 hosts and 16 on
AVX-512 ones: the block is a parameter of the rules (:func:`ort_rules` names both), found
on the profiling host (:func:`energy_models.runtimes.nchwc_block`) and stored with the
predictor, so the designer prices with the block of the host that was timed.
:func:`graph_kernels` reads an optimised graph's nodes
(:func:`energy_models.runtimes.ort_node_times`) and maps every node back to the layers it
came from. A node the rules did not predict is
an error naming the node, never free.

Pure numpy: no torch, no ONNX Runtime.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from energy_models.errors import EnergyModelError
from energy_models.features import RAW_FIELDS, LayerTable

NCHWC = "_nchwc"  # suffix of kernels that run in the blocked layout
DEFAULT_NCHWC_BLOCK = 8  # MLAS NCHWc block (channels) on AVX2 hosts; 16 on AVX-512 ones
NCHWC_BLOCKS = (8, 16)

#: Name of the fusion rules with the AVX2 block (stored in a kernel-level predictor file;
#: files written before the block was a parameter carry this name).
ORT_RULES = "onnxruntime-cpu-nchwc"
CHANNEL_ALIGNMENT = 4  # input channels an NCHWc convolution accepts without falling back

_FIELD = {name: i for i, name in enumerate(RAW_FIELDS)}


def ort_rules(block: int) -> str:
    """The name of the fusion rules for an NCHWc block of ``block`` channels."""
    if block not in NCHWC_BLOCKS:
        raise EnergyModelError(f"no kernel rules for an NCHWc block of {block} channels")
    return ORT_RULES if block == DEFAULT_NCHWC_BLOCK else f"{ORT_RULES}{block}"


def rules_block(rules: str) -> int:
    """The NCHWc block (channels) of fusion rules named ``rules`` (:func:`ort_rules`)."""
    for block in NCHWC_BLOCKS:
        if rules == ort_rules(block):
            return block
    known = ", ".join(ort_rules(b) for b in NCHWC_BLOCKS)
    raise EnergyModelError(f"unknown kernel fusion rules {rules!r} (known: {known})")


_POOLS = {"maxpool2d", "avgpool2d", "adaptiveavgpool2d", "adaptivemaxpool2d"}
_SKIPPED = {"identity", "dropout"}  # removed by the exporter or the optimiser
# Activations fused into the preceding convolution (FusedConv / NCHWc Conv) or gemm.
CONV_FUSIBLE = {"relu", "relu6", "leakyrelu", "sigmoid", "hardsigmoid", "tanh"}
SUM_FUSIBLE = {"relu"}  # after a residual add folded into a blocked convolution
GEMM_FUSIBLE = {"relu", "leakyrelu", "sigmoid", "hardsigmoid", "tanh"}
ELEMENTWISE_KINDS = {"relu", "relu6", "leakyrelu", "silu", "sigmoid", "hardsigmoid", "tanh",
                     "gelu", "add", "mul"}  # fmt: skip


@dataclass(frozen=True)
class Kernel:
    """One kernel ONNX Runtime runs for a network.

    Attributes:
        kind: kernel kind (a layer kind, ``_nchwc`` when blocked, or ``reorder_input`` /
            ``reorder_output``).
        layers: module paths of the torch layers it executes (empty for a reorder).
        row: the numeric row it is priced by (:data:`RAW_FIELDS`).
    """

    kind: str
    layers: tuple[str, ...]
    row: tuple[float, ...]


def _reorder_row(c: float, h: float, w: float) -> tuple[float, ...]:
    values = dict.fromkeys(RAW_FIELDS, 0.0)
    elements = c * h * w
    values.update(
        c_in=c, h_in=h, w_in=w, c_out=c, h_out=h, w_out=w, stride=1, groups=1,
        in_elements=elements, out_elements=elements, n_inputs=1,
    )  # fmt: skip
    return tuple(values[f] for f in RAW_FIELDS)


class _Fuser:
    """Walks one network's layers in execution order, tracking the memory layout."""

    def __init__(
        self, kinds: Sequence[str], rows: np.ndarray, names: Sequence[str], block: int
    ) -> None:
        self.kinds, self.rows, self.names = list(kinds), rows, list(names)
        self.block = block  # NCHWc channels
        self.kernels: list[Kernel] = []
        self.blocked = False  # the current tensor is in NCHWc layout
        # (c, h, w, blocked) of every tensor produced so far, the network input first
        first = rows[0] if len(rows) else np.zeros(len(RAW_FIELDS))
        self.tensors = [(first[_FIELD["c_in"]], first[_FIELD["h_in"]], first[_FIELD["w_in"]])]
        self.layouts = [False]

    def field(self, i: int, name: str) -> float:
        return float(self.rows[i][_FIELD[name]])

    def kind(self, i: int) -> str | None:
        return self.kinds[i] if i < len(self.kinds) else None

    def emit(self, kind: str, first: int, last: int, layout: bool = True) -> None:
        row = tuple(float(v) for v in self.rows[first])
        layers = tuple(self.names[first : last + 1])
        blocked = layout and self.blocked
        self.kernels.append(Kernel(kind + (NCHWC if blocked else ""), layers, row))
        self.tensors.append(
            (self.field(last, "c_out"), self.field(last, "h_out"), self.field(last, "w_out"))
        )
        self.layouts.append(self.blocked)

    def to_layout(self, blocked: bool) -> None:
        if blocked == self.blocked:
            return
        c, h, w = self.tensors[-1]
        direction = "reorder_input" if blocked else "reorder_output"
        self.kernels.append(Kernel(direction, (), _reorder_row(c, h, w)))
        self.blocked = blocked

    def skip_blocked(self, i: int) -> bool:
        """Layout of a residual add's other input: the latest earlier tensor of the add's
        shape before the one the add's first input comes from."""
        shape = (self.field(i, "c_out"), self.field(i, "h_out"), self.field(i, "w_out"))
        for tensor, blocked in zip(self.tensors[-2::-1], self.layouts[-2::-1], strict=True):
            if tensor == shape:
                return blocked
        return False

    def run(self) -> list[Kernel]:
        i = 0
        while i < len(self.kinds):
            kind = self.kinds[i]
            if kind in _SKIPPED:
                i += 1
            elif kind.startswith("conv2d"):
                i = self.conv(i)
            elif kind == "linear":
                i = self.linear(i)
            elif kind in _POOLS:
                # an average pool rounding up is exported with explicit padding: NCHW
                rounded = kind == "avgpool2d" and self.field(i, "ceil_mode") > 0
                self.to_layout(self.field(i, "c_in") % self.block == 0 and not rounded)
                self.emit(kind, i, i)
                i += 1
            elif kind in ("add", "mul"):
                if kind == "add" and self.blocked and not self.skip_blocked(i):
                    self.to_layout(False)
                self.emit(kind, i, i, layout=False)
                i += 1
            elif kind == "hardswish":  # x * hardsigmoid(x): two kernels
                self.emit("hardsigmoid", i, i, layout=False)
                self.emit("mul", i, i, layout=False)
                i += 1
            elif kind in ELEMENTWISE_KINDS:
                self.emit(kind, i, i, layout=False)
                i += 1
            elif kind in ("flatten", "batchnorm2d"):
                self.to_layout(False)
                self.emit(kind, i, i)
                i += 1
            else:
                raise EnergyModelError(
                    f"layer {self.names[i]!r} of kind {kind!r} has no ONNX Runtime kernel rule"
                )
        self.to_layout(False)
        return self.kernels

    def conv(self, i: int) -> int:
        kind = self.kinds[i]
        c_in, c_out = self.field(i, "c_in"), self.field(i, "c_out")
        groups = self.field(i, "groups")
        if kind == "conv2d_depthwise":
            blocked = c_in % CHANNEL_ALIGNMENT == 0
            direct = False
        elif groups > 1:
            blocked = (c_in / groups) % CHANNEL_ALIGNMENT == 0 and c_out % self.block == 0
            direct = False
        else:
            direct = c_in < self.block  # an NCHW input feeds the blocked kernel directly
            blocked = direct or c_in % CHANNEL_ALIGNMENT == 0
        if direct:  # reads an NCHW tensor, writes a blocked one
            self.to_layout(False)
            self.blocked = True
        else:
            self.to_layout(blocked)
        last = i
        if self.kind(last + 1) == "batchnorm2d":
            last += 1
        if blocked and self.kind(last + 1) == "add" and self.skip_blocked(last + 1):
            last += 1
        summed = self.kinds[last] == "add"
        if self.kind(last + 1) in (SUM_FUSIBLE if summed else CONV_FUSIBLE):
            last += 1
        self.emit(kind, i, last)
        return last + 1

    def linear(self, i: int) -> int:
        self.to_layout(False)
        last = i + 1 if self.kind(i + 1) in GEMM_FUSIBLE else i
        self.emit("linear", i, last)
        return last + 1


def fuse_layers(
    kinds: Sequence[str],
    rows: np.ndarray,
    names: Sequence[str],
    block: int = DEFAULT_NCHWC_BLOCK,
) -> list[Kernel]:
    """The kernels ONNX Runtime runs for one network's layers (in execution order), on a
    host whose NCHWc block is ``block`` channels."""
    return _Fuser(kinds, np.asarray(rows, dtype=np.float64), names, block).run()


def network_kernels(
    table: LayerTable, index: int, block: int = DEFAULT_NCHWC_BLOCK
) -> list[Kernel]:
    """The kernels of network ``index`` of ``table`` (NCHWc block ``block``)."""
    rows = np.flatnonzero(table.network == index)
    names = [table.names[r] for r in rows] if table.names else [str(r) for r in rows]
    return fuse_layers(table.kinds[rows].tolist(), table.values[rows], names, block)


def fuse_table(table: LayerTable, block: int = DEFAULT_NCHWC_BLOCK) -> LayerTable:
    """The kernel table of a layer table: one row per kernel, the same networks (NCHWc
    block ``block``)."""
    kinds: list[str] = []
    rows: list[tuple[float, ...]] = []
    index: list[int] = []
    names: list[str] = []
    starts = np.searchsorted(table.network, np.arange(table.n_networks + 1))
    ordered = bool(np.all(np.diff(table.network) >= 0))
    for n in range(table.n_networks):
        if ordered:
            picked = np.arange(starts[n], starts[n + 1])
        else:
            picked = np.flatnonzero(table.network == n)
        layer_names = [table.names[r] for r in picked] if table.names else [""] * len(picked)
        kinds_n = table.kinds[picked].tolist()
        for kernel in fuse_layers(kinds_n, table.values[picked], layer_names, block):
            kinds.append(kernel.kind)
            rows.append(kernel.row)
            index.append(n)
            names.append("+".join(kernel.layers) or kernel.kind)
    return LayerTable(
        kinds=np.asarray(kinds, dtype=object),
        values=np.asarray(rows, dtype=np.float64).reshape(len(rows), len(RAW_FIELDS)),
        network=np.asarray(index, dtype=np.int64),
        n_networks=table.n_networks,
        names=tuple(names),
    )


# --- what ONNX Runtime actually runs: its optimised graph, mapped back to the layers ------


@dataclass(frozen=True)
class OrtNode:
    """One node of ONNX Runtime's optimised graph, with its profiled time.

    Attributes:
        name: the node's name (``/features/features.2/Relu_output_0_nchwc``, ``fused
            /classifier/classifier.0/Gemm``, ``ReorderOutput``...).
        op: its op type (``Conv``, ``FusedGemm``, ``ReorderInput``...).
        blocked: it runs in the NCHWc layout (domain ``com.microsoft.nchwc``).
        inputs, outputs: tensor names (the graph's data flow).
        latency_ms: median time per call from the runtime's profiler (0 if not timed).
    """

    name: str
    op: str
    blocked: bool
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    latency_ms: float = 0.0


_OUTPUT_SUFFIX = re.compile(r"_output_\d+(_nchwc)?$|_nchwc$")
_FUSION_SUFFIX = re.compile(r"/[A-Za-z]+Fusion/?$")  # ``/2/Mul/QuickGeluFusion/``
_CONV_OPS = {"Conv", "FusedConv"}
_GEMM_OPS = {"Gemm", "FusedGemm", "MatMul"}
_POOL_OPS = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}
_REORDER_OPS = {"ReorderInput": "reorder_input", "ReorderOutput": "reorder_output"}
_OP_KINDS = {
    "Relu": "relu",
    "Clip": "relu6",
    "LeakyRelu": "leakyrelu",
    "QuickGelu": "silu",
    "Sigmoid": "sigmoid",
    "HardSigmoid": "hardsigmoid",
    "Tanh": "tanh",
    "Gelu": "gelu",
    "Add": "add",
    "Sum": "add",
    "Mul": "mul",
    "Flatten": "flatten",
    "Reshape": "flatten",
    "BatchNormalization": "batchnorm2d",
    "Identity": "identity",  # a graph that is only an identity (a lone layer)
    "Dropout": "dropout",
}


def node_module(name: str) -> str:
    """The torch module path an exported node's name refers to (``""`` if none).

    The TorchScript-based exporter names nodes by module scope, ``/blocks/blocks.0/
    depthwise/depthwise.2/Clip``: each scope after the first repeats its parent's
    attribute name with the child's (``blocks`` -> ``blocks.0``)."""
    name = _FUSION_SUFFIX.sub("", _OUTPUT_SUFFIX.sub("", name.removeprefix("fused ")))
    scopes = [s for s in name.split("/") if s][:-1]
    path: list[str] = []
    parent = ""
    for scope in scopes:
        path.append(
            scope[len(parent) + 1 :] if parent and scope.startswith(parent + ".") else scope
        )
        parent = scope
    return ".".join(path)


def graph_kernels(
    kinds: Sequence[str],
    rows: np.ndarray,
    names: Sequence[str],
    nodes: Sequence[OrtNode],
    network: str,
) -> list[Kernel]:
    """The kernels of one network as ONNX Runtime's optimised graph runs them, one per
    node, each mapped back to the layer it executes (a fused convolution to its
    convolution, a reorder to the tensor it converts) and priced by that layer's row.

    Args:
        kinds, rows, names: the network's layers (model kinds, raw rows, module paths).
        nodes: the optimised graph's nodes (:func:`energy_models.runtimes.ort_node_times`).
        network: the network's id, for error messages.

    Raises:
        EnergyModelError: a node of an op the predictor does not price, or one that maps
            to no layer of the network; the message names the node.
    """
    rows = np.asarray(rows, dtype=np.float64)
    index = {name: i for i, name in enumerate(names)}
    producer = {t: n for n, node in enumerate(nodes) for t in node.outputs}
    consumers: dict[str, list[int]] = {}
    for n, node in enumerate(nodes):
        for t in node.inputs:
            consumers.setdefault(t, []).append(n)

    def fail(node: OrtNode, why: str):
        raise EnergyModelError(
            f"{network}: ONNX Runtime node {node.name or '(unnamed)'!r} ({node.op}) {why}; "
            "the kernel-level predictor cannot price it"
        )

    def layer_of(n: int, seen: frozenset = frozenset()) -> int | None:
        node = nodes[n]
        if node.op in _REORDER_OPS or n in seen:
            return None
        if node.name:
            return index.get(node_module(node.name))
        for t in node.outputs:  # an op the optimiser split off: its consumer's layer
            for c in consumers.get(t, []):
                found = layer_of(c, seen | {n})
                if found is not None:
                    return found
        return 0 if len(names) == 1 else None  # a lone layer exported as the root module

    kernels = []
    for n, node in enumerate(nodes):
        if node.op in _REORDER_OPS:
            source = producer.get(node.inputs[0]) if node.inputs else None
            at = layer_of(source) if source is not None else None
            if source is None:
                row = rows[0]
                c, h, w = row[_FIELD["c_in"]], row[_FIELD["h_in"]], row[_FIELD["w_in"]]
            elif at is None:
                fail(node, "converts a tensor no layer of the network produces")
            else:
                row = rows[at]
                c, h, w = row[_FIELD["c_out"]], row[_FIELD["h_out"]], row[_FIELD["w_out"]]
            kernels.append(Kernel(_REORDER_OPS[node.op], (), _reorder_row(c, h, w)))
            continue
        at = layer_of(n)
        if at is None:
            fail(node, f"maps to no layer of the network (module {node_module(node.name)!r})")
        if node.op in _CONV_OPS:
            while at >= 0 and not kinds[at].startswith("conv2d"):  # named after its activation
                at -= 1
            if at < 0:
                fail(node, "is a convolution but no convolution layer precedes its layer")
            kind = kinds[at] + (NCHWC if node.blocked else "")
        elif node.op in _GEMM_OPS:
            while at >= 0 and kinds[at] != "linear":
                at -= 1
            if at < 0:
                fail(node, "is a gemm but no linear layer precedes its layer")
            kind = "linear"
        elif node.op in _POOL_OPS:
            if kinds[at] not in _POOLS:
                fail(node, f"is a pool but maps to a {kinds[at]} layer")
            kind = kinds[at] + (NCHWC if node.blocked else "")
        elif node.op in _OP_KINDS:
            kind = _OP_KINDS[node.op]
        else:
            fail(node, "is of an op type the kernel rules do not know")
        kernels.append(Kernel(kind, (names[at],), tuple(float(v) for v in rows[at])))
    return kernels
