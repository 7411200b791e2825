"""Tests of the network families, their search spaces and the registry.

Most tests are parametrised over ``list_networks()``, so a newly registered family is
tested automatically.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive_cnn.errors import ArchitectureError, ConfigError
from adaptive_cnn.networks import (
    Categorical,
    ConvArch,
    ConvBlock,
    Integer,
    MBConvArch,
    MLPArch,
    PlainConvFamily,
    Real,
    arch_cost,
    create_network,
    get_family,
    list_networks,
    parse_arch,
    register_network,
)

FAMILIES = list_networks()
INPUT_SHAPES = [(1, 28, 28), (3, 32, 32), (1, 8, 8)]
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
PROPERTY = settings(max_examples=60, deadline=None)


def _sample(name: str, seed: int):
    return get_family(name).sample(np.random.default_rng(seed))


def test_builtin_families_are_registered() -> None:
    assert {"conv", "mbconv", "mlp"} <= set(FAMILIES)


# --- building and training ------------------------------------------------------------


@pytest.mark.parametrize("input_shape", INPUT_SHAPES)
@pytest.mark.parametrize("name", FAMILIES)
def test_sampled_archs_forward_and_backward(name: str, input_shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    for seed in (11, 12, 13):
        net = create_network(_sample(name, seed), input_shape, num_classes=7)
        logits = net(torch.randn(2, *input_shape))
        assert logits.shape == (2, 7)
        torch.nn.functional.cross_entropy(logits, torch.tensor([0, 6])).backward()
        for param_name, param in net.named_parameters():
            assert param.grad is not None, param_name
            assert torch.isfinite(param.grad).all(), param_name


@pytest.mark.parametrize("name", FAMILIES)
def test_references_are_in_the_space_and_grow_in_cost(name: str) -> None:
    family = get_family(name)
    refs = family.references()
    assert set(refs) == {"small", "medium", "large"}
    assert family.reference() in refs.values()
    for arch in refs.values():
        assert family.decode(family.encode(arch)) == arch
    macs = [arch_cost(refs[k], (1, 28, 28), 10).macs for k in ("small", "medium", "large")]
    assert macs == sorted(macs) and len(set(macs)) == 3


def test_pooling_keeps_a_one_pixel_input_one_pixel() -> None:
    net = create_network("c8k3p-c8k5a-fc16", (1, 1, 1), num_classes=3)
    assert net.features(torch.zeros(2, 1, 1, 1)).shape == (2, 8, 1, 1)
    assert net(torch.zeros(2, 1, 1, 1)).shape == (2, 3)


def test_conv_arch_cost_matches_hand_computation() -> None:
    # c8k3-fc16 on 1x28x28, 10 classes:
    # conv 28*28*8*1*9 = 56448 MACs, 8*9+8 = 80 params;
    # fc 6272 -> 16: 100352 MACs, 100368 params; classifier 16 -> 10: 160 MACs, 170 params.
    # Peak: the ReLU's input + output, 2 * 6272 fp32 values.
    cost = arch_cost("c8k3-fc16", (1, 28, 28), 10)
    assert cost.macs == 56448 + 100352 + 160
    assert cost.params == 80 + 100368 + 170
    assert cost.peak_activation_bytes == 2 * 6272 * 4


# --- strings and encodings --------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
@PROPERTY
@given(seed=SEEDS)
def test_string_round_trip(name: str, seed: int) -> None:
    family, arch = get_family(name), _sample(name, seed)
    assert arch.family == name
    assert str(arch) == arch.to_str()
    assert family.from_str(arch.to_str()) == arch
    assert parse_arch(arch.to_str()) == arch
    assert parse_arch(f"{name}:{arch.to_str()}") == arch


@pytest.mark.parametrize("name", FAMILIES)
@PROPERTY
@given(seed=SEEDS)
def test_encoding_round_trip(name: str, seed: int) -> None:
    family, arch = get_family(name), _sample(name, seed)
    vector = family.encode(arch)
    dims = family.dimensions()
    assert len(vector) == len(dims)
    assert all(dim.contains(value) for dim, value in zip(dims, vector, strict=True))
    assert family.decode(vector) == arch


@pytest.mark.parametrize("name", FAMILIES)
@PROPERTY
@given(seed=SEEDS)
def test_sampled_dimension_values_are_contained(name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for dim in get_family(name).dimensions():
        assert dim.contains(dim.sample(rng)), dim


@pytest.mark.parametrize("name", FAMILIES)
def test_decode_accepts_skopt_points(name: str) -> None:
    import skopt

    family = get_family(name)
    space = skopt.space.Space([dim.to_skopt() for dim in family.dimensions()])
    for point in space.rvs(20, random_state=0):
        arch = family.decode(point)
        assert family.decode(family.encode(arch)) == arch


def test_conv_encoding_fills_inactive_dimensions() -> None:
    family = get_family("conv")
    vector = family.encode(parse_arch("c16k5a-fc64"))
    # n_blocks, 4 x (filters, kernel, pool), batch_norm, n_fc, fc_units_1, fc_units_2
    inactive = [8, 3, "none"]
    assert vector == [1, 16, 5, "avg", *inactive * 3, False, 1, 64, 16]


def test_conv_decode_ignores_inactive_values() -> None:
    family = get_family("conv")
    vector = family.encode(parse_arch("bn-c16k3p-fc64"))
    vector[4:13] = [9999, 4, "bogus"] * 3  # blocks 2..4 are inactive
    vector[16] = -1  # fc_units_2 is inactive
    assert family.decode(vector) == parse_arch("bn-c16k3p-fc64")


def test_mbconv_encoding_matches_hand_written_vector() -> None:
    arch = parse_arch("stem16-m16k3e1-m24k5e6s2-skip-m40k3e3s2-m40k5e6-m80k3e6s2-skip-head128")
    # width, then kernel/expansion per slot and skip for slots 3, 5 and 7;
    # skipped slots carry the filler kernel 3 and expansion 1.
    expected = [1.0, 3, 1, 5, 6, 3, 1, True, 3, 3, 5, 6, False, 3, 6, 3, 1, True]
    assert get_family("mbconv").encode(arch) == expected


def test_mbconv_width_scales_channels_to_multiples_of_eight() -> None:
    family = get_family("mbconv")
    vector = family.encode(family.reference())
    vector[0] = 0.75
    arch = family.decode(vector)
    # 16*0.75 = 12 -> 16, 24*0.75 = 18 -> 16, 40*0.75 = 30 -> 32, 80*0.75 = 60 -> 64,
    # head 128*0.75 = 96.
    assert arch.stem == 16 and arch.head == 96
    assert [layer.out_channels for layer in arch.layers if layer] == [16, 16, 16, 32, 32, 64, 64]


def test_decode_accepts_numpy_scalars() -> None:
    family = get_family("conv")
    vector = [np.int64(1), np.int64(16), np.int64(3), "max", *[8, 3, "none"] * 3]
    vector += [np.bool_(True), np.int64(0), np.int64(16), np.int64(16)]
    assert family.decode(vector) == parse_arch("bn-c16k3p")
    assert type(family.decode(vector).blocks[0].filters) is int


@pytest.mark.parametrize(
    ("arch", "offending"),
    [
        ("c8k3-c8k3-c8k3-c8k3-c8k3", "n_blocks=5"),
        ("c300k3", "filters_1=300"),
        ("c16k3-c16k4p", "kernel_2=4"),
        ("c16k3-fc16-fc16-fc16", "n_fc=3"),
        ("c16k3-fc1000", "fc_units_1=1000"),
        ("stem16-m16k3e7-m24k3e1s2-m24k3e1-m40k3e1s2-m40k3e1-m80k3e1s2-m80k3e1-head128", "=7"),
        ("stem16-m16k3e1-m24k3e1s2-m24k3e1-m40k3e1s2-m40k3e1-m80k3e1s2-m80k7e1-head128", "=7"),
        ("stem16-m16k3e1-skip-m24k3e1-m40k3e1s2-m40k3e1-m80k3e1s2-m80k3e1-head128", "slot 2"),
        ("stem16-m16k3e1-m24k3e1-m24k3e1-m40k3e1s2-m40k3e1-m80k3e1s2-m80k3e1-head128", "slot 2"),
        ("stem16-m16k3e1-head128", "layer slots"),
        ("stem16-m16k3e7", "width"),
        ("stem40-m16k3e1-head128", "width"),
    ],
)
def test_encode_outside_the_space_names_the_value(arch: str, offending: str) -> None:
    parsed = parse_arch(arch)
    create_network(parsed, (1, 8, 8), 2)  # in the grammar, so it builds
    with pytest.raises(ArchitectureError, match="outside the .* search space") as info:
        get_family(parsed.family).encode(parsed)
    assert offending in str(info.value)


@pytest.mark.parametrize("name", FAMILIES)
def test_decode_rejects_bad_vectors(name: str) -> None:
    family = get_family(name)
    vector = family.encode(family.reference())
    with pytest.raises(ArchitectureError, match=f"{len(vector)} values"):
        family.decode(vector[:-1])
    vector[0] = "bogus"
    with pytest.raises(ArchitectureError, match=family.dimensions()[0].name):
        family.decode(vector)


# --- parsing and registry errors ---------------------------------------------------------


def test_parse_with_and_without_prefix() -> None:
    conv = ConvArch((ConvBlock(16, 3, "max"), ConvBlock(32, 5, "avg")), (64,), batch_norm=True)
    assert parse_arch("bn-c16k3p-c32k5a-fc64") == conv
    assert parse_arch("conv:bn-c16k3p-c32k5a-fc64") == conv
    assert parse_arch("  conv: bn-c16k3p-c32k5a-fc64 ") == conv
    mb = parse_arch("mbconv:stem16-m24k5e6s2-skip-head128")
    assert isinstance(mb, MBConvArch) and mb == parse_arch("stem16-m24k5e6s2-skip-head128")
    assert mb.layers[0].stride == 2 and mb.layers[1] is None
    assert parse_arch("stem16-m16k3e1s1").to_str() == "stem16-m16k3e1"
    mlp = parse_arch("fc512-fc128")
    assert isinstance(mlp, MLPArch) and mlp == parse_arch("mlp:fc512-fc128")
    assert mlp.hidden_units == (512, 128)


def test_mlp_network_is_flatten_then_linear_layers() -> None:
    net = create_network("mlp:fc32-fc16", (1, 8, 8), 10)
    kinds = [type(m).__name__ for m in net.modules() if not list(m.children())]
    assert kinds == ["Flatten", "Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert net(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    # 64*32+32 + 32*16+16 + 16*10+10
    assert sum(p.numel() for p in net.parameters()) == 2080 + 528 + 170


def test_mlp_outside_the_space_is_refused_by_encode() -> None:
    family = get_family("mlp")
    with pytest.raises(ArchitectureError, match="at most 2"):
        family.encode(parse_arch("mlp:fc64-fc64-fc64"))
    with pytest.raises(ArchitectureError, match="units_1"):
        family.encode(parse_arch("mlp:fc2048"))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "cXk3",
        "fc",
        "fc64-",
        "fc64-fc0",
        "mlp:c16k3",
        "mlp:fc64-c16k3",
        "bn",
        "c16k3-fc",
        "c16k3p-bn",
        "fc64-c16k3",
        "c16k3-fc64-c16k3",
        "c0k3",
        "c016k3",
        "c16k3x",
        "c16k3--fc64",
        "stem16-m16k4e1",
        "stem-m16k3e1",
        "stem16-m16k3",
        "stem16-m16k3e1s0",
        "stem16-head",
        "head128",
        "conv:stem16-m16k3e1",
        "mbconv:c16k3",
    ],
)
def test_malformed_strings_are_rejected(bad: str) -> None:
    with pytest.raises(ArchitectureError):
        parse_arch(bad)


def test_unparsable_string_error_shows_every_grammar() -> None:
    with pytest.raises(ArchitectureError) as info:
        parse_arch("resnet18")
    message = str(info.value)
    assert "\n" not in message
    for name in FAMILIES:
        assert f"{name}:" in message and repr(get_family(name).example) in message


@pytest.mark.parametrize("call", [lambda: get_family("resnet"), lambda: parse_arch("resnet:x")])
def test_unknown_family_lists_known_ones(call) -> None:
    with pytest.raises(ArchitectureError, match="unknown network family 'resnet'") as info:
        call()
    assert all(name in str(info.value) for name in FAMILIES)


def test_registering_a_taken_name_fails() -> None:
    class Impostor(PlainConvFamily):
        pass

    with pytest.raises(ArchitectureError, match="already registered"):
        register_network(Impostor())
    assert isinstance(get_family("conv"), PlainConvFamily)
    assert type(get_family("conv")) is not Impostor


@pytest.mark.parametrize(
    ("input_shape", "num_classes"),
    [((28, 28), 10), ((1, 0, 28), 10), ((1, 28, 28.0), 10), ((1, 28, 28), 0)],
)
def test_create_network_rejects_bad_arguments(input_shape, num_classes) -> None:
    with pytest.raises(ArchitectureError):
        create_network("c8k3", input_shape, num_classes)


def test_build_rejects_an_arch_of_another_family() -> None:
    with pytest.raises(ArchitectureError, match="expects a ConvArch"):
        get_family("conv").build(parse_arch("stem16"), (1, 8, 8), 2)
    with pytest.raises(ArchitectureError, match="not an architecture"):
        create_network(object(), (1, 8, 8), 2)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ConvArch(()),
        lambda: ConvArch((ConvBlock(8, 3),), (0,)),
        lambda: ConvBlock(8, 3, "median"),
        lambda: ConvBlock(8.0, 3),
        lambda: MBConvArch(16, (ConvBlock(8, 3),)),
    ],
)
def test_invalid_arch_objects_are_rejected(make) -> None:
    with pytest.raises(ArchitectureError):
        make()


# --- dimensions ----------------------------------------------------------------------------


def test_integer_dimension() -> None:
    dim = Integer("n", 1, 4)
    assert dim.contains(1) and dim.contains(np.int64(4))
    assert not any(dim.contains(v) for v in (0, 5, 2.0, True, "2"))
    assert dim.to_skopt().bounds == (1, 4)


def test_categorical_dimension_keeps_bools_and_ints_apart() -> None:
    ints, flags = Categorical("k", (1, 3)), Categorical("b", (False, True))
    assert ints.contains(1) and not ints.contains(True)
    assert flags.contains(np.bool_(True)) and not flags.contains(1)
    assert flags.canonical(np.bool_(True)) is True
    assert Categorical("w", (0.5, 1.0)).contains(np.float64(0.5))


def test_real_dimension_log_uniform_prior() -> None:
    dim = Real("lr", 1e-4, 1e-1, prior="log-uniform")
    values = [dim.sample(np.random.default_rng(s)) for s in range(400)]
    assert all(dim.contains(v) for v in values)
    # Under a log-uniform prior about half the mass lies below the geometric mean.
    below = sum(v < math.sqrt(1e-4 * 1e-1) for v in values) / len(values)
    assert 0.4 < below < 0.6
    assert not dim.contains(math.nan) and not dim.contains(True)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Integer("n", 5, 1),
        lambda: Integer("n", 1.5, 3),
        lambda: Real("x", 0.0, 1.0, prior="log-uniform"),
        lambda: Real("x", 0.0, 1.0, prior="normal"),
        lambda: Real("x", 0.0, math.inf),
        lambda: Categorical("c", ()),
        lambda: Categorical("c", [1, 2]),
    ],
)
def test_invalid_dimensions_are_config_errors(make) -> None:
    with pytest.raises(ConfigError):
        make()
