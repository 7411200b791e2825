"""Fitting a found network into its budget (:mod:`adaptive_cnn.single_path.fit`): a hand
example and properties over random architectures (the budget-form search that uses it is
tested in test_search.py)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive_cnn.networks.mbconv import MBConvArch, MBLayer
from adaptive_cnn.single_path import SinglePathError
from adaptive_cnn.single_path.fit import CHOICES, drop, fit_to_budget, is_on

# a cost per choice that is on, per slot; a kept layer costs 1 mJ, plus 1 mJ fixed
COST = {"k5": 2.0, "e6": 3.0, "se": 0.5, "keep": 1.0}


def _energy(arch: MBConvArch) -> float:
    return 1.0 + sum(COST[c] for s in range(len(arch.layers)) for c in CHOICES if is_on(arch, s, c))


def _arch(*layers: MBLayer | None) -> MBConvArch:
    return MBConvArch(16, tuple(layers), 64)


BIG = MBLayer(16, 5, 6, 1, se=True)  # every choice on: 1 + 2 + 3 + 0.5 = 6.5 mJ


def test_an_architecture_within_the_budget_is_left_alone() -> None:
    arch = _arch(BIG, BIG)
    assert fit_to_budget(arch, {(0, "e6"): 0.1}, _energy, 14.0) == (arch, ())


def test_the_weakest_choice_per_mj_goes_first_until_it_fits() -> None:
    arch = _arch(BIG, BIG)  # 14 mJ
    leads = {(0, "k5"): 0.4, (0, "e6"): 0.3, (1, "e6"): 0.9, (1, "keep"): 0.6, (1, "se"): 0.2}
    # no single drop fits 7 mJ; lead per mJ saved: (0,k5) 0.2, (0,e6) 0.1, (1,e6) 0.3,
    # (1,keep) 0.6/6.5, (1,se) 0.4; then (0,k5) and (0,e6) both fit: the smaller lead goes
    fitted, dropped = fit_to_budget(arch, leads, _energy, 7.0)
    assert dropped == ((1, "keep"), (0, "e6"))  # 14 -> 7.5 (over 7) -> 4.5
    assert fitted == _arch(dataclasses.replace(BIG, expansion=3), None)
    assert _energy(fitted) == pytest.approx(4.5)


def test_a_slight_excess_costs_the_weakest_choice_that_fits_not_a_whole_layer() -> None:
    arch = _arch(BIG, BIG)  # 14 mJ; every single drop below fits 13.6 mJ
    leads = {(0, "e6"): 0.3, (1, "keep"): 0.25, (1, "se"): 0.2}
    fitted, dropped = fit_to_budget(arch, leads, _energy, 13.6)
    assert dropped == ((1, "se"),) and _energy(fitted) == pytest.approx(13.5)


def test_a_budget_below_every_droppable_choice_is_an_error() -> None:
    with pytest.raises(SinglePathError, match="cannot be fitted into the 3 mJ budget"):
        fit_to_budget(_arch(BIG), {(0, "se"): 0.1}, _energy, 3.0)


def test_drop_turns_one_choice_off() -> None:
    arch = _arch(BIG)
    assert drop(arch, 0, "k5").layers[0].kernel == 3
    assert drop(arch, 0, "e6").layers[0].expansion == 3
    assert drop(arch, 0, "se").layers[0].se is False
    assert drop(arch, 0, "keep").layers[0] is None
    with pytest.raises(ValueError, match="cannot drop"):
        drop(_arch(None), 0, "k5")


layers = st.one_of(
    st.none(),
    st.builds(
        MBLayer,
        st.just(16),
        st.sampled_from((3, 5)),
        st.sampled_from((3, 6)),
        st.just(1),
        se=st.booleans(),
    ),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(layers, min_size=1, max_size=4),
    st.floats(1.0, 30.0),
    st.lists(st.floats(-0.5, 1.0), min_size=16, max_size=16),
)
def test_fitting_only_turns_choices_off_and_fits_whenever_it_can(slots, budget, values) -> None:
    arch = _arch(*slots)
    leads = {(s, c): values[4 * s + i] for s in range(len(slots)) for i, c in enumerate(CHOICES)}
    floor = _arch(*(None for _ in slots))  # every droppable choice off
    if _energy(floor) > budget:
        with pytest.raises(SinglePathError):
            fit_to_budget(arch, leads, _energy, budget)
        return
    fitted, dropped = fit_to_budget(arch, leads, _energy, budget)
    assert _energy(fitted) <= budget
    assert len(set(dropped)) == len(dropped)
    for s in range(len(slots)):
        for c in CHOICES:
            assert not is_on(fitted, s, c) or is_on(arch, s, c)  # nothing turned on
    if dropped:  # nothing is dropped from a network that fits
        assert _energy(arch) > budget
