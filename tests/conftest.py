"""Shared fixtures: the bundled 8x8 digits split, a private training cache, and for
`acnn design` tests a hand-made energy predictor with closed-form costs."""

from __future__ import annotations

import pytest

from adaptive_cnn.data import load_dataset
from adaptive_cnn.training import TrainingCache


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits, split with seed 0 (no download, loads in milliseconds)."""
    return load_dataset("digits", seed=0)


@pytest.fixture
def cache(tmp_path):
    return TrainingCache(tmp_path / "cache")


ALL_LAYER_KINDS = (
    "conv2d",
    "conv2d_depthwise",
    "linear",
    "batchnorm2d",
    "relu",
    "relu6",
    "sigmoid",
    "add",
    "mul",
    "identity",
    "adaptiveavgpool2d",
    "flatten",
    "maxpool2d",
    "avgpool2d",
)  # fmt: skip  -- every layer kind of the conv and mbconv families


def closed_form_predictor(
    power_w: float = 10.0,
    *,
    kinds: tuple[str, ...] = ALL_LAYER_KINDS,
    runtime_ms: tuple[tuple[str, ...], tuple[float, ...]] = (("1", "macs"), (0.001, 1e-6)),
    power: tuple[tuple[str, ...], tuple[float, ...]] | None = None,
    network=None,
    runtime: str = "onnxruntime",
):
    """A hand-made energy predictor with closed-form costs, declared power (so every
    energy is "estimated"): by default every layer costs 0.001 ms + 1 ms per million MACs
    at ``power_w``, and the network model adds nothing. ``runtime_ms`` and ``power`` are
    (feature names, coefficients) of each layer's polynomial; ``network`` replaces the
    identity :class:`NetworkModel`. ``runtime`` is what designs priced with it record (the
    local profile's by default)."""
    from energy_models.features import CALL_GROUPS
    from energy_models.predictor import (
        EnergyPredictor,
        FlopsBaseline,
        LayerModel,
        NetworkModel,
        PolynomialModel,
    )

    power_terms, power_coefs = power or (("1",), (power_w,))

    def layer(kind):
        runtime = PolynomialModel(*runtime_ms, 1e-6)
        return LayerModel(kind, runtime, PolynomialModel(power_terms, power_coefs, 1.0), 10, 0, 0)

    if network is None:
        network = NetworkModel(dict.fromkeys(CALL_GROUPS, 1.0), 1.0, 0.0, {}, 0.0, power_w)
    return EnergyPredictor(
        device="local",
        runtime=runtime,
        threads=1,
        torch_version="test",
        created="today",
        power_source="declared",
        estimated=True,
        layers={k: layer(k) for k in kinds},
        network=network,
        flops_baseline=FlopsBaseline(1.0, 1.0, 0.0, power_w),
    )


@pytest.fixture(scope="session")
def make_predictor():
    """:func:`closed_form_predictor`, for the conftests and tests below this folder."""
    return closed_form_predictor


@pytest.fixture(scope="session")
def design_predictor(tmp_path_factory):
    """Path of the closed-form design predictor (a JSON file)."""
    return str(closed_form_predictor().save(tmp_path_factory.mktemp("pred") / "predictor.json"))


@pytest.fixture(scope="session")
def design_args():
    """Builds tiny `acnn design` argument lists on digits (all-local unless changed)."""

    def build(predictor, out, cache, *extra, trials=3, baselines=False):
        return [
            "design",
            "--dataset",
            "digits",
            "--predictor",
            str(predictor),
            "--out",
            str(out),
            "--cache-dir",
            str(cache),
            "--trials",
            str(trials),
            "--initial-points",
            "2",
            "--candidates",
            "40",
            "--proxy-epochs",
            "1",
            "--proxy-subset",
            "300",
            "--final-epochs",
            "1",
            "--link",
            "none",
            "--threads",
            "1",
            "--quiet",
            "--budget",
            "1mJ",
            *([] if baselines else ["--no-baselines"]),
            *extra,
        ]

    return build


#: the settings of ``design_args`` as a flat mapping (``DesignConfig.from_dict``)
TINY_DESIGN = {
    "dataset": "digits",
    "trials": 3,
    "initial_points": 2,
    "candidates": 40,
    "proxy_epochs": 1,
    "proxy_subset": 300,
    "final_epochs": 1,
    "link": "none",
    "threads": 1,
    "budget": "1mJ",
}


@pytest.fixture(scope="session")
def tiny_config(design_predictor):
    """Builds the :class:`DesignConfig` of a tiny design on digits (``design_args``'s
    settings, all-local), with settings changed by keyword (flat, as in a config file)."""
    from adaptive_cnn.design import DesignConfig

    def build(**changes):
        return DesignConfig.from_dict({**TINY_DESIGN, "predictor": design_predictor, **changes})

    return build


@pytest.fixture(scope="session")
def runtime_run_dir(tmp_path_factory, design_predictor):
    """A finished `acnn design` run folder on digits: two local stages, then a WiFi cloud.

    Built once per session (seconds); tests that change it copy it first.
    """
    import torch

    from adaptive_cnn.design import DesignConfig, design

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runtime")
    config = DesignConfig.from_dict(
        {
            **TINY_DESIGN,
            "predictor": design_predictor,
            "budget": "400mJ",
            "trials": 2,
            "link": "wifi",
            "cloud_arch": "conv:c8k3-fc16",
            "cloud_epochs": 1,
            "local_stages": 2,
        }
    )
    try:
        design(config, root / "run", baselines=False, cache_root=root / "cache")
    finally:
        torch.set_num_threads(threads)
    return root / "run"
