"""The kernel-level predictor for ONNX Runtime: fusion rules checked against the runtime's
own optimised graphs, node-to-layer mapping, profiling and fitting on real sessions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

from adaptive_cnn.profiling import anchor_set, network_set
from energy_models.errors import EnergyModelError
from energy_models.estimate import estimate_layers
from energy_models.features import LayerTable
from energy_models.fitting import fit_predictor, kernel_table
from energy_models.kernels import (
    ORT_RULES,
    OrtNode,
    fuse_table,
    graph_kernels,
    network_kernels,
    node_module,
    ort_rules,
    rules_block,
)
from energy_models.layers import describe_network
from energy_models.outside_networks import outside_networks
from energy_models.power import DeclaredPowerModel
from energy_models.predictor import EnergyPredictor
from energy_models.profile_store import ProfileData, ProfileStore
from energy_models.profiler import Profiler, TimingSettings, kernel_records
from energy_models.runtimes import nchwc_block, onnx_bytes, ort_node_times

SETTINGS = {"device": "test", "runtime": "onnxruntime", "threads": 1, "torch_version": "x"}


def _graph_of(spec) -> tuple[LayerTable, list]:
    module = spec.build().eval()
    x = torch.randn(1, *spec.input_shape)
    nodes = ort_node_times(onnx_bytes(module, (x,)), {"input0": x.numpy()}, 1, calls=2, warmup=0)
    table = LayerTable.from_networks([spec.layers])
    return table, graph_kernels(
        table.kinds.tolist(), table.values, list(table.names), nodes, spec.id
    )


def _kernel_multiset(kernels) -> Counter:
    return Counter((k.kind, k.row) for k in kernels)


def test_fusion_rules_predict_what_onnx_runtime_runs_for_the_families() -> None:
    """The designer prices family networks from the static rules: for every family (and
    both input shapes) they must name exactly the kernels ORT's optimiser produces, with
    this host's NCHWc block (8 on AVX2, 16 on AVX-512)."""
    specs = network_set([(1, 28, 28), (3, 32, 32)], 12, np.random.default_rng(3))
    specs += anchor_set((3, 32, 32))
    block = nchwc_block()
    for spec in specs:
        table, graph = _graph_of(spec)
        predicted = network_kernels(table, 0, block)
        assert _kernel_multiset(predicted) == _kernel_multiset(graph), spec.id


def test_the_block_changes_where_the_layout_is_reordered() -> None:
    """With a block of 8 an 8-channel tensor stays blocked between two convolutions; with
    16 it is fewer channels than a block, so it goes back to NCHW and the next blocked
    convolution reads it directly. The rules' names carry the block both ways."""
    layers = describe_network(
        nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1)),
        (1, 8, 8),
    )
    table = LayerTable.from_networks([layers])
    kinds = {b: [k.kind for k in network_kernels(table, 0, b)] for b in (8, 16)}
    assert kinds[8] == ["conv2d_nchwc", "conv2d_nchwc", "reorder_output"]
    assert kinds[16] == ["conv2d_nchwc", "reorder_output", "conv2d_nchwc", "reorder_output"]
    assert rules_block(ort_rules(8)) == 8 and ort_rules(8) == ORT_RULES
    assert rules_block(ort_rules(16)) == 16 and ort_rules(16) != ORT_RULES
    with pytest.raises(EnergyModelError, match="unknown kernel fusion rules"):
        rules_block("onnxruntime-cpu-nchwc32")


def test_rules_fuse_conv_bn_activation_and_fold_residual_adds() -> None:
    spec = next(s for s in anchor_set((1, 28, 28)) if s.id.startswith("anchor:mbconv:small"))
    kernels = network_kernels(LayerTable.from_networks([spec.layers]), 0)
    stem = kernels[0]
    assert stem.kind == "conv2d_nchwc" and stem.layers == ("stem.0", "stem.1", "stem.2")
    summed = [k for k in kernels if any(name.endswith(".add") for name in k.layers)]
    assert summed and all(k.kind == "conv2d_nchwc" for k in summed)
    assert not any(k.kind == "add" for k in kernels)  # every residual add is folded
    assert kernels[-1].kind == "linear" and "reorder_output" in [k.kind for k in kernels]


def test_a_channel_count_off_the_blocks_runs_plain_nchw_with_its_reorders() -> None:
    net = nn.Sequential(nn.Conv2d(16, 85, 3), nn.ReLU(), nn.Conv2d(85, 16, 3), nn.Flatten())
    layers = describe_network(net, (16, 12, 12))
    kinds = [k.kind for k in network_kernels(LayerTable.from_networks([layers]), 0)]
    assert kinds == ["reorder_input", "conv2d_nchwc", "reorder_output", "conv2d", "flatten"]


def test_every_node_of_an_outside_network_maps_back_to_a_layer() -> None:
    for spec in outside_networks(8, np.random.default_rng(0)):
        table, graph = _graph_of(spec)
        names = set(table.names)
        for kernel in graph:
            assert kernel.kind.startswith("reorder") or set(kernel.layers) <= names
        assert sum(k.kind.startswith("conv2d") for k in graph) == sum(
            k.startswith("conv2d") for k in table.kinds.tolist()
        )


def test_node_names_map_to_module_paths() -> None:
    assert node_module("/features/features.2/Relu_output_0_nchwc") == "features.2"
    assert node_module("/blocks/blocks.0/depthwise/depthwise.2/Clip") == "blocks.0.depthwise.2"
    assert node_module("fused /classifier/classifier.0/Gemm") == "classifier.0"
    assert node_module("/2/Mul/QuickGeluFusion/") == "2"
    assert node_module("/Relu") == ""


def test_an_unknown_or_unmappable_node_is_an_error_naming_it() -> None:
    net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU())
    table = LayerTable.from_networks([describe_network(net, (1, 6, 6))])
    args = (table.kinds.tolist(), table.values, list(table.names))
    with pytest.raises(EnergyModelError, match="'/0/Einsum'.*op type"):
        graph_kernels(*args, [OrtNode("/0/Einsum", "Einsum", False)], "net")
    with pytest.raises(EnergyModelError, match="'/9/Conv'.*no layer"):
        graph_kernels(*args, [OrtNode("/9/Conv", "Conv", False)], "net")


def test_profile_fit_and_predict_at_kernel_level(tmp_path) -> None:
    """A small real ONNX Runtime profile: kernel times recorded per node, a kernel-level
    predictor fitted from them, saved and read back, pricing networks by their kernels."""
    specs = network_set([(1, 28, 28)], 9, np.random.default_rng(0))
    store = ProfileStore.open(tmp_path, SETTINGS)
    profiler = Profiler(
        store, "onnxruntime", 1, DeclaredPowerModel(1.0, 4.0), TimingSettings(2, 10, 1)
    )
    profiler.profile_networks(specs)
    data = ProfileData.load(tmp_path)
    record = data.networks[0]
    assert record["kernels"] and all(k["latency_ms"] >= 0 for k in record["kernels"])
    predictor = fit_predictor(data, folds=3)
    assert predictor.kernels == ort_rules(nchwc_block()) and "kernel-level" in predictor.source
    again = EnergyPredictor.load(predictor.save(tmp_path / "predictor.json"))
    assert again.kernels == predictor.kernels
    static = again.predict_table(LayerTable.from_networks([s.layers for s in specs[:3]]))
    assert np.all(static.latency_ms > 0) and len(static.rows) < sum(
        len(s.layers) for s in specs[:3]
    )
    graph = again.predict_kernels(kernel_table(data.networks))
    assert graph.latency_ms.shape == (len(data.networks),)
    breakdown = estimate_layers(specs[0].layers, specs[0].input_shape, again)
    assert len(breakdown.layers) == len(fuse_table(LayerTable.from_networks([specs[0].layers])))


def test_a_predictor_file_with_unknown_fusion_rules_is_refused(tmp_path) -> None:
    spec = network_set([(1, 28, 28)], 1, np.random.default_rng(0))[0]
    x = torch.randn(1, *spec.input_shape)
    records = kernel_records(spec.build(), (x,), spec.layers, spec.id, 1)
    assert {r["kind"] for r in records} >= {"linear"}
    store = ProfileStore.open(tmp_path, SETTINGS)
    Profiler(
        store, "onnxruntime", 1, DeclaredPowerModel(1, 4), TimingSettings(1, 5, 1)
    ).profile_networks(network_set([(1, 28, 28)], 6, np.random.default_rng(1)))
    d = fit_predictor(ProfileData.load(tmp_path), folds=2).to_dict()
    d["kernels"] = "tvm-fusion"
    with pytest.raises(EnergyModelError, match="unknown kernel fusion rules"):
        EnergyPredictor.from_dict(d)
