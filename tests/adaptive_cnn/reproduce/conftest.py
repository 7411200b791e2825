"""Fixtures of the reproduction tests: a synthetic profile pair and a hand-made design run.

The profiles follow a known cost law (so fitting them takes a second or two) and the run
folder holds untrained networks on the bundled digits with stage energies and a link
chosen so that the crossovers are worked out by hand in the tests.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from adaptive_cnn.networks import create_network, describe_arch, get_family
from energy_models.layer_builder import descriptor_to_dict

SHAPE = (1, 28, 28)
POWER_W = 10.0  # declared, so every record is "estimated"
SETTINGS = {
    "format": "acnn-profile",
    "format_version": 1,
    "device": "testboard",
    "runtime": "torch",
    "threads": 1,
    "torch_version": "test",
    "warmup": 1,
    "repeats": 30,
}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The CPU is shared: one thread, and tiny networks run no slower on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _layer_ms(d: dict, rng: np.random.Generator) -> float:
    """The synthetic cost law: 2 us + 1 ns per MAC + 0.2 ns per output element, +-3%."""
    return (0.002 + 1e-6 * d["macs"] + 2e-7 * d["elements"]) * rng.lognormal(0, 0.03)


def _record(ms: float, **fields) -> dict:
    return {
        **fields,
        "latency_ms": ms,
        "power_w": POWER_W,
        "energy_mj": ms * POWER_W,
        "power_source": "declared",
        "energy_label": "estimated",
    }


def write_profile(root: Path, seed: int, n_networks: int, kinds: set[str] | None = None) -> set:
    """A profile directory of ``n_networks`` random conv networks and their layers.

    Networks with a layer kind outside ``kinds`` (when given) are skipped, so a held-out
    profile only has kinds the fit saw. Returns the kinds it holds.
    """
    rng = np.random.default_rng(seed)
    family = get_family("conv")
    root.mkdir(parents=True)
    (root / "profile.json").write_text(json.dumps({**SETTINGS, "seed": seed}))
    layers, networks, seen = {}, [], set()
    while len(networks) < n_networks:
        arch = f"conv:{family.sample(rng).to_str()}"
        descs = [descriptor_to_dict(d) for d in describe_arch(arch, SHAPE, 10)]
        if kinds is not None and not {d["kind"] for d in descs} <= kinds:
            continue
        total = 0.0
        for d in descs:
            ms = _layer_ms(d, rng)
            total += ms
            key = hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
            layers[key] = _record(ms, id=key, layer=d)
            seen.add(d["kind"])
        networks.append(
            _record(
                1.1 * total + 0.02,
                id=f"{arch}@1x28x28",
                arch=arch,
                family="conv",
                macs=sum(d["macs"] for d in descs),
                layers=descs,
            )
        )
    for name, records in (("layers.jsonl", layers.values()), ("networks.jsonl", networks)):
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in records))
    return seen


@pytest.fixture(scope="session")
def profile_writer():
    """``profile_writer(root, seed, n_networks, kinds=None)``: see :func:`write_profile`."""
    return write_profile


@pytest.fixture(scope="session")
def profiles(tmp_path_factory) -> tuple[Path, Path]:
    """(fit, held-out) synthetic profile directories of the same board."""
    root = tmp_path_factory.mktemp("profiles")
    kinds = write_profile(root / "fit", seed=0, n_networks=40)
    write_profile(root / "heldout", seed=1, n_networks=12, kinds=kinds)
    return root / "fit", root / "heldout"


# The hand-worked link: 100 B per image at 1 W flat radio power, no tail, 10 ms RTT, a
# device idling at 0.1 W and an instant cloud model:
#   E_cloud(B, R) = 100 * 8 / (1000 * B) * 1 W + 0.1 W * R  =  0.8 / B + 0.1 * R   [mJ]
# Against the largest local stage (4 mJ): B* = 0.8 / (4 - 1) = 0.2667 Mbit/s at R = 10 ms,
# and R* = (4 - 0.8) / 0.1 = 32 ms at B = 1 Mbit/s.
LOCAL_ENERGY_MJ = (1.0, 4.0)
PAYLOAD_BYTES = 100.0
DEVICE_YAML = """\
description: a test board with one hand-made link
cores: 1
threads: 1
memory_limit: 1GiB
runtime: torch
power: {source: declared, idle_w: 0.1, active_w: 1.0}
links:
  custom:
    uplink_mbps: 1.0
    downlink_mbps: 1.0
    base_power_w: 1.0
    power_per_mbps_w: 0.0
    tail_energy_mj: 0.0
    rtt_ms: 10.0
"""


def write_hand_run(folder: Path, thresholds=(0.05, 0.05)) -> Path:
    """A design run folder on digits: two untrained local stages and a cloud stage."""
    folder.mkdir(parents=True)
    (folder / "testboard.yaml").write_text(DEVICE_YAML)
    refs = {k: v.to_str() for k, v in get_family("conv").references().items()}
    torch.manual_seed(0)
    stages = []
    for i, (ref, where) in enumerate(
        (
            (refs["small"], "device"),
            (refs["medium"], "device"),
            (refs["small"], "cloud over custom"),
        )
    ):
        weights = "cloud.pt" if where != "device" else f"stage{i + 1}.pt"
        torch.save(create_network(f"conv:{ref}", (1, 8, 8), 10).state_dict(), folder / weights)
        stage = {"arch": f"conv:{ref}", "where": where, "weights": weights}
        if where == "device":
            stage |= {"energy_mj": LOCAL_ENERGY_MJ[i], "latency_ms": 0.1 * (i + 1)}
        else:
            stage |= {"energy_mj": 0.0, "payload_bytes": PAYLOAD_BYTES}
        stages.append(stage)
    summary = {
        "stages": stages,
        "policy": {"thresholds": list(thresholds), "metric": "margin"},
        "input": {
            "dataset": "digits",
            "shape": [1, 8, 8],
            "num_classes": 10,
            "class_names": [str(i) for i in range(10)],
            "preprocessing": {"pixel_max": 16.0, "mean": [0.3], "std": [0.38]},
        },
        "link": "custom",
        "device": str(folder / "testboard.yaml"),
        "energy_source": "estimated",
        "cloud_latency_ms": 0.0,
        "config": {"dataset": "digits", "split_seed": 0, "cloud_latency_ms": 0.0},
    }
    (folder / "result.json").write_text(json.dumps(summary))
    return folder


@pytest.fixture(scope="session")
def make_hand_run():
    """``make_hand_run(folder, thresholds=...)`` writes a hand-made run folder there."""
    return write_hand_run


# --- the design experiments (adaptive, hyperpower, single-path) ------------------------


@pytest.fixture(scope="session")
def predictor_writer(make_predictor):
    """``predictor_writer(path, power_w)`` saves the closed-form test predictor there."""
    return lambda path, power_w=POWER_W: str(make_predictor(power_w).save(path))


@pytest.fixture(scope="session")
def reproduce_predictor(make_predictor, tmp_path_factory) -> str:
    """Path of the closed-form test predictor saved as a predictor file."""
    return str(make_predictor(POWER_W).save(tmp_path_factory.mktemp("pred") / "predictor.json"))
