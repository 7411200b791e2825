"""Fixtures of the single-path tests: a closed-form predictor for every layer kind
(``mbconv``'s SE included), with non-trivial network terms."""

from __future__ import annotations

import pytest

from energy_models.features import CALL_GROUPS
from energy_models.predictor import EnergyPredictor, NetworkModel

POWER_W = 10.0


@pytest.fixture(scope="session")
def predictor(make_predictor) -> EnergyPredictor:
    """Every layer: 0.001 ms + 1 ms per million MACs + 1e-7 ms per output element, at a
    power that grows with channels; the network model inflates, knees and charges calls."""
    scale = {g: 1.0 + 0.1 * i for i, g in enumerate(CALL_GROUPS)}
    per_call = {g: 0.002 * (i + 1) for i, g in enumerate(CALL_GROUPS)}
    return make_predictor(
        POWER_W,
        runtime_ms=(("1", "macs", "out_elements"), (0.001, 1e-6, 1e-7)),
        power=(("1", "c_out"), (POWER_W, 0.01)),
        network=NetworkModel(scale, 0.05, 0.3, per_call, 0.5, 7.0),
    )


@pytest.fixture(scope="session")
def predictor_file(predictor, tmp_path_factory) -> str:
    """Path of :func:`predictor` saved as a predictor file."""
    return str(predictor.save(tmp_path_factory.mktemp("sp-pred") / "predictor.json"))
