"""The link model against hand computations, its validation, overrides and shipped figures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from energy_models.communication import NO_LINK, LinkModel, links_from_mapping
from energy_models.devices import load_links
from energy_models.errors import EnergyModelError

NUMBERS = {
    "uplink_mbps": 8.0,
    "downlink_mbps": 16.0,
    "base_power_w": 0.5,
    "power_per_mbps_w": 0.25,
    "tail_energy_mj": 100.0,
    "rtt_ms": 50.0,
}


@pytest.fixture
def link() -> LinkModel:
    return LinkModel(name="test", source="hand-made", **NUMBERS)


def test_one_megabyte_at_eight_megabits_per_second(link):
    # 10**6 bytes = 8 * 10**6 bits at 8 * 10**6 bit/s: 1 s = 1000 ms
    assert link.transfer_time_ms(10**6) == pytest.approx(1000.0)
    # 1 s x (0.5 W + 0.25 W/(Mbit/s) x 8 Mbit/s) = 2.5 J = 2500 mJ, plus the 100 mJ tail
    assert link.uplink_power_w == pytest.approx(2.5)
    assert link.send_energy_mj(10**6) == pytest.approx(2600.0)


def test_tail_share_charges_part_of_the_tail(link):
    batched = link.with_overrides(tail_share=0.25)
    assert batched.send_energy_mj(10**6) == pytest.approx(2500.0 + 25.0)


def test_offload_energy_and_latency_by_hand(link):
    # response: 1000 bytes = 8000 bits at 16 Mbit/s = 0.5 ms
    # wait = 50 ms RTT + 30 ms cloud + 0.5 ms = 80.5 ms; at 0.4 W idle that is 32.2 mJ
    kwargs = {"cloud_latency_ms": 30.0, "response_bytes": 1000}
    energy = link.offload_energy_mj(10**6, idle_power_w=0.4, **kwargs)
    assert energy == pytest.approx(2600.0 + 32.2)
    assert link.offload_latency_ms(10**6, **kwargs) == pytest.approx(1000.0 + 80.5)
    assert link.downlink_time_ms(1000) == pytest.approx(0.5)


def test_zero_bytes_cost_nothing(link):
    assert link.send_energy_mj(0) == 0.0
    assert link.offload_energy_mj(0, idle_power_w=1.0, cloud_latency_ms=10.0) == 0.0
    assert link.offload_latency_ms(0, cloud_latency_ms=10.0) == 0.0
    assert link.transfer_time_ms(0) == 0.0


def test_vectorised_equals_scalar_calls(link):
    payload = np.array([[0, 1, 784], [3072, 10**6, 12345]])
    kwargs = {"cloud_latency_ms": 12.0, "response_bytes": 40}
    checks = [
        (link.transfer_time_ms, {}),
        (link.send_energy_mj, {}),
        (link.offload_energy_mj, {"idle_power_w": 0.7, **kwargs}),
        (link.offload_latency_ms, kwargs),
    ]
    for method, extra in checks:
        batch = method(payload, **extra)
        assert isinstance(batch, np.ndarray) and batch.shape == payload.shape
        singles = [[method(int(b), **extra) for b in row] for row in payload]
        np.testing.assert_allclose(batch, singles)
        assert all(isinstance(v, float) for row in singles for v in row)


@given(st.integers(1, 10**8), st.integers(1, 10**8))
def test_energy_is_linear_in_bytes_apart_from_one_tail(a, b):
    link = LinkModel(name="x", **NUMBERS)
    split = link.send_energy_mj(a) + link.send_energy_mj(b) - link.tail_energy_mj
    assert link.send_energy_mj(a + b) == pytest.approx(split, rel=1e-9)


@pytest.mark.parametrize(
    "change",
    [
        {"uplink_mbps": 0.0},
        {"downlink_mbps": 0.0},
        {"base_power_w": -0.1},
        {"rtt_ms": float("nan")},
        {"tail_energy_mj": float("inf")},
        {"power_per_mbps_w": "0.3"},
        {"rtt_ms": True},
        {"tail_share": 1.5},
        {"name": ""},
        {"name": NO_LINK},
    ],
)
def test_invalid_numbers_are_rejected(change):
    with pytest.raises(EnergyModelError):
        LinkModel(**{"name": "x", **NUMBERS, **change})


def test_negative_payload_is_an_error(link):
    with pytest.raises(EnergyModelError, match="payload"):
        link.send_energy_mj(np.array([10, -1]))


def test_from_dict_names_unknown_and_missing_keys():
    with pytest.raises(EnergyModelError, match="rtt_sec"):
        LinkModel.from_dict({**NUMBERS, "rtt_sec": 1}, name="x")
    missing = {k: v for k, v in NUMBERS.items() if k != "rtt_ms"}
    with pytest.raises(EnergyModelError, match="missing rtt_ms"):
        LinkModel.from_dict(missing, name="x")


def test_dict_round_trip(link):
    assert LinkModel.from_dict(link.to_dict()) == link


def test_with_overrides(link):
    faster = link.with_overrides(uplink_mbps=16.0, rtt_ms=5)
    assert (faster.uplink_mbps, faster.rtt_ms, faster.base_power_w) == (16.0, 5.0, 0.5)
    assert link.uplink_mbps == 8.0  # the original is unchanged
    with pytest.raises(EnergyModelError, match="rtt"):
        link.with_overrides(rtt=5)
    with pytest.raises(EnergyModelError):
        link.with_overrides(uplink_mbps=-1)


def test_override_keeps_other_numbers_and_says_so_in_the_source(link):
    merged = links_from_mapping({"test": {"rtt_ms": 5}}, base={"test": link}, origin="my.yaml")
    expected = {**link.to_dict(), "rtt_ms": 5.0, "source": merged["test"].source}
    assert merged["test"] == LinkModel(**expected)
    assert "hand-made" in merged["test"].source
    assert "rtt_ms" in merged["test"].source and "my.yaml" in merged["test"].source


def test_new_link_must_give_every_number(link):
    with pytest.raises(EnergyModelError, match="my.yaml.*missing"):
        links_from_mapping({"custom": {"rtt_ms": 5}}, base={"test": link}, origin="my.yaml")
    merged = links_from_mapping({"custom": NUMBERS}, base={"test": link})
    assert set(merged) == {"test", "custom"} and merged["custom"].tail_energy_mj == 100.0


# Shipped figures: the cited tail power x tail time (Huang et al., MobiSys 2012, Table 3).
TAILS_MJ = {
    "wifi": 119.3 * 0.2381,  # mW x s = mJ
    "lte": 1060.0 * 11.576,
    "3g": 803.9 * 8.0882 + 601.3 * 0.8242,  # DCH tail, then FACH tail
}


@pytest.mark.parametrize("name", sorted(TAILS_MJ))
def test_shipped_links_match_the_cited_figures(name):
    link = load_links()[name]
    assert link.tail_energy_mj == pytest.approx(TAILS_MJ[name], rel=5e-3)
    assert "Huang" in link.source and "MobiSys 2012" in link.source
    assert link.tail_share == 1.0


def test_lte_tail_dominates_one_small_transfer():
    lte, wifi = load_links()["lte"], load_links()["wifi"]
    image_bytes = 28 * 28  # one Fashion-MNIST image
    assert lte.tail_energy_mj / lte.send_energy_mj(image_bytes) > 0.99
    assert lte.send_energy_mj(image_bytes) > 100 * wifi.send_energy_mj(image_bytes)


def test_user_links_file_overrides_and_adds(tmp_path):
    user = tmp_path / "links.yaml"
    user.write_text(
        "lte: {rtt_ms: 40, tail_share: 0.1}\n"
        "custom:\n"
        "  uplink_mbps: 100\n  downlink_mbps: 100\n  base_power_w: 1\n"
        "  power_per_mbps_w: 0.01\n  tail_energy_mj: 0\n  rtt_ms: 2\n  source: my lab\n"
    )
    shipped, links = load_links(), load_links(user)
    assert set(links) == set(shipped) | {"custom"}
    assert links["lte"].rtt_ms == 40.0 and links["lte"].tail_share == 0.1
    assert links["lte"].uplink_mbps == shipped["lte"].uplink_mbps
    assert links["wifi"] == shipped["wifi"]
    assert links["custom"].source == "my lab"


def test_user_links_file_errors_name_the_file(tmp_path):
    user = tmp_path / "links.yaml"
    user.write_text("wifi: {rtt: 3}\n")
    with pytest.raises(EnergyModelError, match=r"links.yaml.*rtt"):
        load_links(user)
    with pytest.raises(EnergyModelError, match="not found"):
        load_links(tmp_path / "absent.yaml")
