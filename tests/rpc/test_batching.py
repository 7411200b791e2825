"""Dynamic batching: requests share model calls, the queue is bounded, deadlines drop."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rpc.batching import Closed, DeadlineExpired, DynamicBatcher, QueueFull


class Gate:
    """A model that doubles its input, records batch sizes, and can be held closed."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Event()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.entered.set()
        assert self.open.wait(10)
        self.calls.append(len(x))
        return x * 2


def test_waiting_requests_share_one_model_call():
    gate = Gate()
    gate.open.clear()
    batcher = DynamicBatcher(gate, max_batch_size=8, max_queue_delay_ms=0, max_queue_size=16)
    first = batcher.submit(np.ones((1, 2)))
    assert gate.entered.wait(5)  # the worker holds the first request alone
    later = [batcher.submit(np.full((2, 2), i)) for i in range(3)]
    gate.open.set()
    assert np.array_equal(first.result(5), np.full((1, 2), 2))
    for i, future in enumerate(later):
        assert np.array_equal(future.result(5), np.full((2, 2), 2 * i))
    batcher.close(5)
    assert gate.calls == [1, 6]  # the three waiting requests ran as one batch of 6


def test_a_full_queue_refuses_at_once_and_a_closed_batcher_refuses():
    gate = Gate()
    gate.open.clear()
    batcher = DynamicBatcher(gate, max_batch_size=1, max_queue_delay_ms=0, max_queue_size=2)
    running = batcher.submit(np.ones((1, 1)))
    assert gate.entered.wait(5)
    queued = [batcher.submit(np.ones((1, 1))) for _ in range(2)]
    with pytest.raises(QueueFull):
        batcher.submit(np.ones((1, 1)))
    gate.open.set()
    batcher.close(5)  # the drain computes what was queued
    assert all(f.result(0) is not None for f in [running, *queued])
    with pytest.raises(Closed):
        batcher.submit(np.ones((1, 1)))


def test_a_request_whose_deadline_passed_while_queued_is_not_computed():
    now = [0.0]
    gate = Gate()
    gate.open.clear()
    batcher = DynamicBatcher(
        gate, max_batch_size=1, max_queue_delay_ms=0, max_queue_size=4, clock=lambda: now[0]
    )
    running = batcher.submit(np.ones((1, 1)))
    assert gate.entered.wait(5)
    late = batcher.submit(np.ones((1, 1)), deadline=1.0)
    now[0] = 2.0  # the deadline passes while the first batch computes
    gate.open.set()
    running.result(5)
    with pytest.raises(DeadlineExpired):
        late.result(5)
    batcher.close(5)
    assert gate.calls == [1]


def test_a_model_error_reaches_every_request_of_its_batch():
    def broken(x):
        raise RuntimeError("model failed")

    batcher = DynamicBatcher(broken, max_batch_size=4, max_queue_delay_ms=0, max_queue_size=4)
    with pytest.raises(RuntimeError, match="model failed"):
        batcher.submit(np.ones((2, 1))).result(5)
    batcher.close(5)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=12), st.integers(1, 6))
def test_every_request_gets_its_own_rows_back(sizes, max_batch):
    sizes = [min(s, max_batch) for s in sizes]
    batcher = DynamicBatcher(
        lambda x: x + 1, max_batch_size=max_batch, max_queue_delay_ms=1, max_queue_size=64
    )
    inputs = [np.full((n, 3), i, dtype=np.float32) for i, n in enumerate(sizes)]
    futures = [batcher.submit(x) for x in inputs]
    for x, future in zip(inputs, futures, strict=True):
        assert np.array_equal(future.result(5), x + 1)
    batcher.close(5)


def test_instances_compute_batches_of_one_model_at_once():
    both_in = threading.Barrier(2, timeout=5)  # broken unless two calls overlap

    def model(x):
        both_in.wait()
        return x + 1

    batcher = DynamicBatcher(
        model, max_batch_size=1, max_queue_delay_ms=0, max_queue_size=4, instances=2
    )
    futures = [batcher.submit(np.full((1, 2), i)) for i in range(2)]
    assert [f.result(10)[0, 0] for f in futures] == [1, 2]
    batcher.close(5)
    assert not any(t.is_alive() for t in batcher._threads)
