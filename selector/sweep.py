"""Exact sweep of one threshold with the others fixed, in O(N log N).

Moving threshold ``s`` only changes where the images that reach stage ``s`` exit: each one
either stops at ``s`` (confidence at or above the threshold) or goes on to the exit stage
the later thresholds give it. Sorting those images by confidence, every distinct outcome
is a prefix that goes on, so cumulative sums give all of them without a T x N matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selector.cascade import exit_stages
from selector.cascade_data import CascadeData
from selector.errors import SelectorError


@dataclass(frozen=True)
class Sweep:
    """Every distinct outcome of one threshold (M candidates).

    Attributes:
        candidates: (M,) increasing threshold values: each distinct confidence of the images
            reaching the stage, then one strictly above the stage's largest confidence (no
            image stops there).
        counts: (M, S) int number of images exiting at each stage.
        n_correct: (M,) int number of images answered right.
    """

    candidates: np.ndarray
    counts: np.ndarray
    n_correct: np.ndarray


def sweep_threshold(data: CascadeData, thresholds: np.ndarray, stage: int) -> Sweep:
    """All outcomes of threshold ``stage`` (0-based, < S-1) with the other thresholds fixed.

    Args:
        data: per-image confidence and correctness of the S stages.
        thresholds: (S-1,) current thresholds; entry ``stage`` is ignored.
        stage: which threshold to sweep.

    Returns:
        The candidates in increasing order and their exit counts and right answers.
    """
    if not 0 <= stage < data.n_stages - 1:
        raise SelectorError(f"stage must lie in [0, {data.n_stages - 1}), got {stage}")
    passing = np.array(thresholds, dtype=np.float64)
    passing[stage] = np.inf
    onward = exit_stages(data, passing)  # where each image exits if it does not stop here
    right = data.correct[onward, np.arange(data.n_images)]
    reach = onward > stage
    base_counts = np.bincount(onward[~reach], minlength=data.n_stages)
    base_correct = np.count_nonzero(right[~reach])

    conf = data.confidence[stage, reach]
    order = np.argsort(conf, kind="stable")
    conf = conf[order]
    first = np.flatnonzero(np.diff(conf, prepend=-np.inf))  # first of each distinct value
    going_on = np.r_[first, conf.size].astype(np.int64)  # images below each candidate
    above = np.nextafter(data.confidence[stage].max(), np.inf)

    onward_counts = _prefix(np.eye(data.n_stages, dtype=np.int64)[onward[reach][order]])
    counts = base_counts + onward_counts[going_on]
    counts[:, stage] += conf.size - going_on
    right_onward = _prefix(right[reach][order])
    right_here = _prefix(data.correct[stage, reach][order])
    n_correct = base_correct + right_onward[going_on] + right_here[-1] - right_here[going_on]
    return Sweep(candidates=np.r_[conf[first], above], counts=counts, n_correct=n_correct)


def _prefix(values: np.ndarray) -> np.ndarray:
    """Sums of the first k rows for k = 0..len(values)."""
    values = values.astype(np.int64)
    zero = np.zeros((1,) + values.shape[1:], dtype=np.int64)
    return np.concatenate((zero, np.cumsum(values, axis=0)))
