"""Random networks outside acnn's search families: what users bring to a predictor.

The accuracy benchmark holds a predictor to networks it was never fitted on. Held-out
networks of the families themselves test interpolation; these test the layer mixes the
families never produce: 1x1 convolutions, depthwise convolutions without batch norm,
residual blocks with an identity skip, global-pool heads, stride-2 convolutions instead
of pools, every supported activation, channel counts off the 8-channel grid, and
1x28x28 and 3x32x32 inputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import partial

import numpy as np
from torch import nn

from energy_models.layers import describe_network
from energy_models.ops import Add
from energy_models.profiler import NetworkSpec

ACTIVATIONS = ("relu", "relu6", "leakyrelu", "silu", "hardswish", "sigmoid", "tanh", "gelu")
_ACTIVATION = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leakyrelu": nn.LeakyReLU,
    "silu": nn.SiLU,
    "hardswish": nn.Hardswish,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}
BLOCKS = ("pointwise", "depthwise", "residual", "pool", "strided")
SHAPES = ((1, 28, 28), (3, 32, 32))
_CHANNELS = (6, 8, 12, 16, 20, 24, 30, 32, 40, 48, 64)


class Residual(nn.Module):
    """``act(x + bn(conv(act(bn(conv(x))))))``: a basic block with an identity skip."""

    def __init__(self, channels: int, activation: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            _ACTIVATION[activation](),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.add = Add()
        self.act = _ACTIVATION[activation]()

    def forward(self, x):
        return self.act(self.add(self.body(x), x))


def _block(kind: str, c: int, hw: int, act: str, rng: np.random.Generator):
    """One block's modules and its output (channels, spatial size)."""
    if kind == "pointwise":
        out = int(rng.choice(_CHANNELS))
        mods = [nn.Conv2d(c, out, 1)]
        if rng.random() < 0.5:
            mods.append(nn.BatchNorm2d(out))
        return [*mods, _ACTIVATION[act]()], out, hw
    if kind == "depthwise":
        k = int(rng.choice([3, 5]))
        stride = 2 if hw >= 8 and rng.random() < 0.4 else 1
        conv = nn.Conv2d(c, c, k, stride, k // 2, groups=c)
        return [conv, _ACTIVATION[act]()], c, (hw + 2 * (k // 2) - k) // stride + 1
    if kind == "residual":
        return [Residual(c, act)], c, hw
    if kind == "pool":
        pool = nn.MaxPool2d(2) if rng.random() < 0.5 else nn.AvgPool2d(2)
        return [pool], c, hw // 2
    out = int(rng.choice(_CHANNELS))
    return [nn.Conv2d(c, out, 3, 2, 1), _ACTIVATION[act]()], out, (hw - 1) // 2 + 1


def _build(plan: dict, num_classes: int) -> nn.Module:
    rng = np.random.default_rng(plan["seed"])
    c_in, hw = plan["shape"][0], plan["shape"][1]
    act = plan["activation"]
    stem = int(rng.choice(_CHANNELS))
    k = int(rng.choice([1, 3, 5]))
    mods: list[nn.Module] = [nn.Conv2d(c_in, stem, k, padding=k // 2)]
    if rng.random() < 0.5:
        mods.append(nn.BatchNorm2d(stem))
    mods.append(_ACTIVATION[act]())
    c = stem
    for kind in plan["blocks"]:
        if kind in ("pool", "strided", "depthwise") and hw < 4:
            kind = "pointwise"
        block, c, hw = _block(kind, c, hw, act, rng)
        mods += block
    if plan["head"] == "global":
        mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    elif plan["head"] == "global-hidden":
        hidden = int(rng.choice([32, 64, 100, 128]))
        mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, hidden)]
        mods += [_ACTIVATION[act](), nn.Linear(hidden, num_classes)]
    else:
        mods += [nn.Flatten(), nn.Linear(c * hw * hw, num_classes)]
    return nn.Sequential(*mods).eval()


def outside_networks(
    count: int,
    rng: np.random.Generator,
    shapes: Sequence[tuple[int, int, int]] = SHAPES,
    num_classes: int = 10,
) -> list[NetworkSpec]:
    """``count`` random networks outside the families, shapes and activations in turn."""
    specs = []
    for i in range(count):
        shape = tuple(shapes[i % len(shapes)])
        plan = {
            "seed": int(rng.integers(2**31)),
            "shape": shape,
            "activation": ACTIVATIONS[(i // len(shapes)) % len(ACTIVATIONS)],
            "blocks": [str(b) for b in rng.choice(BLOCKS, size=int(rng.integers(1, 5)))],
            "head": str(rng.choice(["global", "global-hidden", "flatten"])),
        }
        build = partial(_build, plan, num_classes)
        digest = hashlib.sha256(repr(sorted(plan.items())).encode()).hexdigest()[:10]
        key = f"outside:{plan['activation']}-{'-'.join(plan['blocks'])}-{plan['head']}@{digest}"
        specs.append(
            NetworkSpec(
                id=key,
                build=build,
                input_shape=shape,
                layers=tuple(describe_network(build(), shape)),
                meta={"family": "outside", "arch": key, "plan": plan, "num_classes": num_classes},
            )
        )
    return specs
