"""Hypothesis strategies for small cascades, shared through a fixture.

Confidences are drawn from a few levels so that ties (an image exactly at a threshold,
two images with the same confidence) come up often.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from selector import CascadeData, StageCosts

_COST = st.floats(0, 100, allow_nan=False, allow_infinity=False)


def cascades(
    stages: tuple[int, int] = (1, 4), max_images: int = 12, low: float = 0.0, high: float = 1.0
) -> st.SearchStrategy[tuple[CascadeData, StageCosts]]:
    """(data, costs) with S in ``stages``, 1..max_images images, confidences in [low, high]."""

    @st.composite
    def build(draw: st.DrawFn) -> tuple[CascadeData, StageCosts]:
        n_stages = draw(st.integers(*stages))
        n_images = draw(st.integers(1, max_images))
        levels = draw(st.lists(st.floats(low, high), min_size=1, max_size=5))
        conf = draw(arrays(np.float64, (n_stages, n_images), elements=st.sampled_from(levels)))
        correct = draw(arrays(np.bool_, (n_stages, n_images)))
        remote = np.zeros(n_stages, dtype=bool)
        remote[-1] = draw(st.booleans())
        costs = StageCosts(
            energy_mj=draw(arrays(np.float64, n_stages, elements=_COST)),
            latency_ms=draw(arrays(np.float64, n_stages, elements=_COST)),
            payload_bytes=np.where(remote, draw(_COST), 0.0),
            remote=remote,
        )
        return CascadeData(conf, correct), costs

    return build()


@pytest.fixture(scope="session")
def cascade_strategy():
    """The :func:`cascades` factory, for ``data.draw(cascade_strategy(...))`` in tests."""
    return cascades
