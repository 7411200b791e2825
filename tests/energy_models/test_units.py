"""Units as users write them: energy, bytes, power and durations, and their errors."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from energy_models.errors import EnergyModelError
from energy_models.units import (
    BYTE_UNITS,
    DURATION_UNITS_S,
    ENERGY_UNITS_MJ,
    POWER_UNITS_W,
    format_bytes,
    parse_bytes,
    parse_duration_s,
    parse_energy_mj,
    parse_power_w,
)


@pytest.mark.parametrize(
    ("text", "expected_mj"),
    [
        ("2mJ", 2.0),
        ("500uJ", 0.5),
        ("500µJ", 0.5),  # MICRO SIGN
        ("500μJ", 0.5),  # GREEK SMALL LETTER MU
        ("0.002J", 2.0),
        ("3", 3.0),  # bare number: millijoules
        (" 1.5 mJ ", 1.5),
        ("2e-3J", 2.0),
        ("250nJ", 0.00025),
        (4, 4.0),
        (0.25, 0.25),
        ("0", 0.0),
    ],
)
def test_parse_energy_mj(text, expected_mj):
    assert parse_energy_mj(text) == pytest.approx(expected_mj)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5MB", 1_500_000),
        ("200KiB", 204_800),
        ("4096", 4096),
        ("1GiB", 1_073_741_824),
        ("1GB", 1_000_000_000),
        ("3kB", 3000),
        ("3KB", 3000),
        ("512mb", 512_000_000),  # all-lowercase spelling of bytes
        ("2 MiB", 2 * 1024 * 1024),
        ("10B", 10),
        (7, 7),
        ("0.5KiB", 512),
    ],
)
def test_parse_bytes(text, expected):
    value = parse_bytes(text)
    assert value == expected
    assert isinstance(value, int)


@pytest.mark.parametrize(
    ("text", "expected_w"), [("9W", 9.0), ("500mW", 0.5), ("2", 2.0), ("1.5kW", 1500.0)]
)
def test_parse_power_w(text, expected_w):
    assert parse_power_w(text) == pytest.approx(expected_w)


@pytest.mark.parametrize(
    ("text", "expected_s"),
    [("30s", 30.0), ("5min", 300.0), ("2h", 7200.0), ("250ms", 0.25), ("12", 12.0)],
)
def test_parse_duration_s(text, expected_s):
    assert parse_duration_s(text) == pytest.approx(expected_s)


@pytest.mark.parametrize(
    ("parser", "bad"),
    [
        (parse_energy_mj, "-1mJ"),
        (parse_energy_mj, "nan"),
        (parse_energy_mj, "inf"),
        (parse_energy_mj, float("nan")),
        (parse_energy_mj, float("inf")),
        (parse_energy_mj, -2),
        (parse_energy_mj, "2MJ"),  # megajoules: not a unit a device budget uses
        (parse_energy_mj, "2 watts"),
        (parse_energy_mj, "mJ"),
        (parse_energy_mj, ""),
        (parse_energy_mj, True),
        (parse_energy_mj, None),
        (parse_energy_mj, "1e400J"),
        (parse_bytes, "1.5"),  # a bare number of bytes must be whole
        (parse_bytes, 1.5),
        (parse_bytes, "3Mb"),  # reads as megabits
        (parse_bytes, "-1KiB"),
        (parse_power_w, "5J"),
        (parse_duration_s, "5 days"),
        (parse_duration_s, "-3s"),
    ],
)
def test_bad_values_are_one_line_errors(parser, bad):
    with pytest.raises(EnergyModelError) as info:
        parser(bad)
    message = str(info.value)
    assert "\n" not in message
    assert repr(bad) in message or str(bad) in message


def test_unknown_unit_message_lists_the_accepted_units():
    with pytest.raises(EnergyModelError, match=r"J, mJ, uJ"):
        parse_energy_mj("2kWh")
    with pytest.raises(EnergyModelError, match=r"KiB, MiB, GiB"):
        parse_bytes("2 blocks")


@pytest.mark.parametrize(
    ("num_bytes", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (256 * 2**20, "256 MiB"),
        (4 * 2**30, "4 GiB"),
    ],
)
def test_format_bytes(num_bytes, text):
    assert format_bytes(num_bytes) == text


finite = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(finite, st.sampled_from(sorted(ENERGY_UNITS_MJ)))
def test_energy_round_trip(value, unit):
    assert parse_energy_mj(f"{value!r}{unit}") == pytest.approx(value * ENERGY_UNITS_MJ[unit])


@given(finite, st.sampled_from(sorted(POWER_UNITS_W)))
def test_power_round_trip(value, unit):
    assert parse_power_w(f"{value!r} {unit}") == pytest.approx(value * POWER_UNITS_W[unit])


@given(finite, st.sampled_from(sorted(DURATION_UNITS_S)))
def test_duration_round_trip(value, unit):
    assert parse_duration_s(f"{value!r}{unit}") == pytest.approx(value * DURATION_UNITS_S[unit])


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(sorted(BYTE_UNITS)))
def test_bytes_round_trip(count, unit):
    assert parse_bytes(f"{count}{unit}") == count * BYTE_UNITS[unit]


@given(st.integers(min_value=0, max_value=2**50))
def test_format_bytes_reads_back_within_its_rounding(num_bytes):
    # three significant digits: the read-back is within 0.5% of the original
    assert math.isclose(parse_bytes(format_bytes(num_bytes)), num_bytes, rel_tol=5e-3, abs_tol=1)
