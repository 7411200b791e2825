"""Weights a found network inherits from the supernet that found it.

A superkernel holds every choice of its slot in shared weights: the 3x3 kernel is the
inner core of the 5x5, expansion 3 the first half of the hidden (and SE) channels. So the
plain :class:`~adaptive_cnn.networks.mbconv_blocks.InvertedResidual` of any choice can be
loaded with exactly the weights the superkernel computes that choice with (with its
indicators forced to the choice, both compute the same function). A whole derived
network inherits the stem, the kept slots, the head and the classifier the same way, so
it can be fine-tuned instead of trained from scratch.
"""

from __future__ import annotations

import torch

from adaptive_cnn.networks.mbconv import MBConvArch, MBLayer, build_mbconv
from adaptive_cnn.single_path.superkernel import EXPANSIONS, KERNELS, SuperkernelMBConv
from adaptive_cnn.single_path.supernet import SinglePathSupernet

Tensors = dict[str, torch.Tensor]


def layer_state(sk: SuperkernelMBConv, layer: MBLayer) -> Tensors:
    """The state of the plain layer ``layer`` (the slot's choice) inside ``sk``.

    Keys are those of ``InvertedResidual.state_dict()`` for ``layer``.

    Raises:
        ValueError: ``layer`` is not one of the slot's choices (channels or stride differ).
    """
    if (
        (layer.out_channels, layer.stride) != (sk.out_channels, sk.stride)
        or layer.kernel not in KERNELS
        or layer.expansion not in EXPANSIONS
    ):
        raise ValueError(f"{layer.to_str()} is not a choice of this slot")
    hidden = sk.in_channels * layer.expansion
    squeezed = sk.se_half if layer.expansion == EXPANSIONS[0] else sk.se_hidden
    core = slice(1, 4) if layer.kernel == 3 else slice(0, 5)
    src = {k: v.detach() for k, v in sk.state_dict().items()}
    out: Tensors = {}
    for name, value in src.items():
        group, _, rest = name.partition(".")
        if group not in ("expand", "depthwise", "project", "se_reduce", "se_expand"):
            continue  # the thresholds: the choice itself, not weights of the layer
        if group in ("expand", "depthwise") and value.dim() > 0:
            value = value[:hidden]
            if group == "depthwise" and rest == "0.weight":
                value = value[:, :, core, core]
        elif group == "project" and rest == "0.weight":
            value = value[:, :hidden]
        elif group in ("se_reduce", "se_expand"):
            if not layer.se:
                continue
            reduce = group == "se_reduce"
            if value.dim() == 4:
                value = value[:squeezed, :hidden] if reduce else value[:hidden, :squeezed]
            else:
                value = value[:squeezed] if reduce else value[:hidden]
            name = ("se.reduce." if reduce else "se.expand.") + rest
        out[name] = value.clone()
    return out


def inherited_state(net: SinglePathSupernet, arch: MBConvArch | None = None) -> Tensors:
    """The state of ``build_mbconv(arch)`` (default: the supernet's current choice) with
    every weight taken from ``net``.

    Raises:
        ValueError: ``arch`` is not in the supernet's space (stem, head or a slot differ).
    """
    arch = arch if arch is not None else net.derive_arch()
    if (arch.stem, arch.head, len(arch.layers)) != (
        net.stem_channels,
        net.head_channels,
        len(net.blocks),
    ):
        raise ValueError(f"{arch.to_str()} is not in this supernet's space")
    state: Tensors = {}
    for prefix, module in (("stem.", net.stem), ("head.", net.head), ("", net.tail)):
        state.update({prefix + k: v.detach().clone() for k, v in module.state_dict().items()})
    for i, (block, layer) in enumerate(zip(net.blocks, arch.layers, strict=True)):
        if layer is None:
            if not block.skippable:
                raise ValueError(f"slot {i} of this supernet cannot be skipped")
            continue
        state.update({f"blocks.{i}.{k}": v for k, v in layer_state(block, layer).items()})
    # the plain network's own key order (and a strict check that every key is covered)
    plain = build_mbconv(arch, net.input_shape, net.num_classes).state_dict()
    missing, extra = plain.keys() - state.keys(), state.keys() - plain.keys()
    if missing or extra:
        raise ValueError(f"inheritance mismatch: missing {sorted(missing)}, extra {sorted(extra)}")
    return {k: state[k] for k in plain}
