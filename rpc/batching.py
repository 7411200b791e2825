"""Dynamic batching with a bounded queue, per-request deadlines and a drain.

Requests queue up to ``max_queue_size``; a free worker thread takes as many as fit in
``max_batch_size`` images, waiting at most ``max_queue_delay_ms`` after the oldest one
arrived for more to join, runs the model once, and splits the result. ``instances``
worker threads run batches of one model at once (the runtimes release the GIL while a
model runs: ONNX Runtime's ``session.run`` and torch's kernels). A full queue refuses
at once (:class:`QueueFull`) rather than letting callers wait without bound; a request
whose deadline passed while it queued is dropped (:class:`DeadlineExpired`) rather than
computed for nobody.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np


class QueueFull(Exception):
    """The batcher's queue is full: the server is overloaded."""


class Closed(Exception):
    """The batcher is draining or closed and takes no new requests."""


class DeadlineExpired(Exception):
    """A request's deadline passed before its batch ran."""


@dataclass
class _Item:
    images: np.ndarray
    deadline: float | None
    future: Future = field(default_factory=Future)


class DynamicBatcher:
    """Runs ``fn`` over concatenated request batches on ``instances`` worker threads.

    Args:
        fn: (N, ...) array -> (N, ...) array, the model; called from several threads at
            once when ``instances`` > 1, so it must be thread-safe (an ONNX Runtime
            session and a torch module in inference mode are).
        max_batch_size: most images per call of ``fn``; a request never exceeds it.
        max_queue_delay_ms: how long the oldest queued request waits for company.
        max_queue_size: most requests waiting (not counting the batches being computed).
        instances: calls of ``fn`` that may run at once (worker threads), >= 1.
        clock: monotonic seconds (passed in so tests can reason about deadlines).
    """

    def __init__(
        self,
        fn: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch_size: int,
        max_queue_delay_ms: float,
        max_queue_size: int,
        instances: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if min(max_batch_size, max_queue_size, instances) < 1 or max_queue_delay_ms < 0:
            raise ValueError("batch size, queue size and instances must be >= 1, the delay >= 0")
        self.fn, self.clock = fn, clock
        self.max_batch_size, self.max_queue_size = max_batch_size, max_queue_size
        self.max_queue_delay_s = max_queue_delay_ms / 1e3
        self._queue: deque[tuple[float, _Item]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"acnn-batcher-{i}", daemon=True)
            for i in range(instances)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, images: np.ndarray, deadline: float | None = None) -> Future:
        """Queue one request of ``len(images)`` images; its future gets the outputs.

        Raises:
            QueueFull: ``max_queue_size`` requests are already waiting.
            Closed: the batcher is draining.
        """
        if len(images) > self.max_batch_size:
            raise ValueError(f"a request holds at most {self.max_batch_size} images")
        item = _Item(images, deadline)
        with self._cond:
            if self._closed:
                raise Closed("the server is shutting down")
            if len(self._queue) >= self.max_queue_size:
                raise QueueFull(f"queue full ({self.max_queue_size} requests waiting)")
            self._queue.append((self.clock(), item))
            self._cond.notify()
        return item.future

    def close(self, timeout: float | None = None) -> None:
        """Refuse new requests, finish the queued ones, stop the workers (within
        ``timeout`` seconds in all)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        end = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if end is None else max(0.0, end - time.monotonic()))

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if batch:  # empty when another worker took the queue while this one waited
                self._run(batch)

    def _next_batch(self) -> list[_Item] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            flush_at = self._queue[0][0] + self.max_queue_delay_s
            while not self._closed and self._queued_images() < self.max_batch_size:
                remaining = flush_at - self.clock()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return self._take()

    def _queued_images(self) -> int:
        return sum(len(item.images) for _, item in self._queue)

    def _take(self) -> list[_Item]:
        batch, size = [], 0
        while self._queue and size + len(self._queue[0][1].images) <= self.max_batch_size:
            _, item = self._queue.popleft()
            batch.append(item)
            size += len(item.images)
        return batch

    def _run(self, batch: list[_Item]) -> None:
        now = self.clock()
        live = []
        for item in batch:
            if item.deadline is not None and item.deadline <= now:
                item.future.set_exception(DeadlineExpired("deadline passed while queued"))
            elif item.future.set_running_or_notify_cancel():
                live.append(item)
        if not live:
            return
        try:
            outputs = self.fn(np.concatenate([item.images for item in live]))
        except Exception as exc:  # the model failed: every caller of this batch hears it
            for item in live:
                item.future.set_exception(exc)
            return
        start = 0
        for item in live:
            item.future.set_result(outputs[start : start + len(item.images)])
            start += len(item.images)
