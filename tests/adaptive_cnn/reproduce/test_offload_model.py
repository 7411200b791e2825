"""The offload model against energies and crossovers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adaptive_cnn.reproduce import offload_model as om
from energy_models.communication import LinkModel
from selector import CascadeData

# 100 B at 1 W flat, no tail, 10 ms RTT, 0.1 W idle, instant cloud:
# E_cloud(B, R) = 0.8 / B + 0.1 * R mJ (see tests/reproduce/conftest.py).
LINK = LinkModel("custom", 1.0, 1.0, 1.0, 0.0, 0.0, 10.0)
ARGS = (100.0, 0.1, 0.0)


def _setup(thresholds=(0.5, 0.5)) -> om.OffloadSetup:
    """Four images; stage confidences and correctness chosen by hand.

    image:           0     1     2     3
    stage 1 conf   0.9   0.2   0.1   0.3    right: y n n n
    stage 2 conf   0.8   0.7   0.1   0.2    right: y y n n
    cloud          (answers)                right: y y y n
    Thresholds 0.5/0.5: image 0 exits at stage 1, image 1 at stage 2, images 2-3 at cloud.
    """
    data = CascadeData(
        confidence=np.array([[0.9, 0.2, 0.1, 0.3], [0.8, 0.7, 0.1, 0.2], [1, 1, 1, 1]]),
        correct=np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=bool),
    )
    return om.OffloadSetup(
        local_energy_mj=(1.0, 4.0),
        local_latency_ms=(0.1, 0.2),
        payload_bytes=100.0,
        idle_power_w=0.1,
        cloud_latency_ms=0.0,
        thresholds=thresholds,
        val=data,
        test=data,
        target_val_accuracy=0.75,
    )


def test_cloud_energy_is_the_closed_form():
    setup = _setup()
    for b, r in ((1.0, 10.0), (0.5, 30.0), (8.0, 5.0)):
        link = LINK.with_overrides(uplink_mbps=b, rtt_ms=r)
        assert setup.cloud_energy_mj(link) == pytest.approx(0.8 / b + 0.1 * r)


def test_strategies_by_hand():
    points = om.strategies_at(_setup(), LINK)  # E_cloud = 0.8 + 1 = 1.8 mJ
    assert points[om.ALL_LOCAL].energy_mj == 4.0
    assert points[om.ALL_LOCAL].accuracy == 0.5
    # local cascade: image 0 exits at stage 1 (1 mJ), the others pay 1 + 4 mJ
    assert points[om.LOCAL_CASCADE].energy_mj == pytest.approx((1 + 3 * 5) / 4)
    assert points[om.LOCAL_CASCADE].accuracy == 0.5
    assert points[om.ALL_CLOUD].energy_mj == pytest.approx(1.8)
    assert points[om.ALL_CLOUD].accuracy == 0.75
    fixed = points[om.FIXED]
    assert fixed.energy_mj == pytest.approx((1 + 5 + 2 * (5 + 1.8)) / 4)
    assert fixed.accuracy == 0.75 and fixed.offload_rate == 0.5
    # re-optimised, least energy at accuracy >= 0.75: images 1 and 2 must pass stage 1
    # (tau1 > 0.2), image 2 must reach the cloud (tau2 > 0.1), image 1 can stop at stage 2
    # (tau2 <= 0.7), and image 3 (wrong everywhere) is cheapest stopped at stage 1
    # (tau1 <= 0.3): (1 + 5 + 6.8 + 1) / 4 mJ.
    best = points[om.REOPTIMISED]
    assert best.accuracy == 0.75
    assert best.energy_mj == pytest.approx((1 + 5 + 6.8 + 1) / 4)
    assert 0.2 < best.thresholds[0] <= 0.3 and 0.1 < best.thresholds[1] <= 0.7


def test_breakeven_bandwidth_and_rtt_by_hand():
    assert om.breakeven_bandwidth_mbps(LINK, *ARGS, 4.0) == pytest.approx(0.8 / 3)
    assert om.breakeven_rtt_ms(LINK, *ARGS, 4.0) == pytest.approx(32.0)
    # floor at infinite bandwidth is 1 mJ: a 0.9 mJ local stage is never beaten
    assert om.breakeven_bandwidth_mbps(LINK, *ARGS, 0.9) is None
    # at zero RTT the cloud still costs 0.8 mJ
    assert om.breakeven_rtt_ms(LINK, *ARGS, 0.7) is None
    assert om.breakeven_rtt_ms(LINK, 100.0, 0.0, 0.0, 4.0) == math.inf


def test_find_crossings_interpolates_exactly_for_straight_lines():
    x = [0.0, 1.0, 2.0, 3.0]
    (c,) = om.find_crossings(x, [0.0, 1.0, 2.0, 3.0], [2.5, 2.5, 2.5, 2.5])
    assert c.value == pytest.approx(2.5) and (c.lower, c.upper) == (2.0, 3.0)
    assert not c.a_cheaper_above  # a grows past b
    assert om.find_crossings(x, [1, 1, 1, 1], [2, 2, 2, 2]) == []
    (tie,) = om.find_crossings(x, [0, 2, 4, 6], [2, 2, 2, 2])
    assert tie.value == 1.0 and (tie.lower, tie.upper) == (0.0, 2.0)


def test_sweep_crossing_brackets_the_closed_form():
    setup = _setup()
    values = list(np.geomspace(0.1, 100, 13))
    rows = om.sweep(setup, LINK, "uplink_mbps", values, reoptimise=False)
    assert len(rows) == 13 * 4
    energy = {
        s: [r["energy_mj"] for r in rows if r["strategy"] == s]
        for s in (om.ALL_CLOUD, om.ALL_LOCAL)
    }
    (c,) = om.find_crossings(values, energy[om.ALL_CLOUD], energy[om.ALL_LOCAL], log_x=True)
    exact = 0.8 / 3
    assert c.lower <= exact <= c.upper and c.a_cheaper_above
    assert c.value == pytest.approx(exact, rel=0.1)  # interpolated between grid points
