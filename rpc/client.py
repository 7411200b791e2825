"""An Open Inference Protocol client for the cloud stage: deadline, retries, backoff.

:class:`CloudClient` sends images to any peer of the protocol (acnn serve, Triton,
KServe, MLServer) in ``raw_input_contents`` and reads probabilities back from raw or
typed contents. Each attempt has its own deadline; UNAVAILABLE and RESOURCE_EXHAUSTED
are retried after an exponential backoff, everything else (including a passed deadline)
fails at once with :class:`CloudError`, so the caller can fall back without waiting.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import grpc
import numpy as np

from adaptive_cnn.stage import INPUT_NAME, OUTPUT_NAME
from rpc.auth import bearer
from rpc.errors import CloudAddressError, CloudModelError
from rpc.generated import acnn_oip_pb2 as pb
from rpc.protocol import UNARY_METHODS, infer_request, method_path, response_outputs
from rpc.tensors import TensorError

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
_DOWN_CODES = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"})
WIRE_DATATYPES = ("auto", "fp32", "uint8")
# codes with which a call may fail before the request left the device (no connection)
_UNSENT_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")


def parse_target(target: str) -> tuple[str, int]:
    """``(host, port)`` of ``HOST:PORT`` (a host name, an IPv4 address or ``[IPv6]``).

    Raises:
        CloudAddressError: ``target`` is not of that form, or its port is not 1..65535.
    """
    hint = "give the cloud as HOST:PORT, e.g. 127.0.0.1:8001 or [::1]:8001"
    host, sep, port = str(target).rpartition(":")
    if not sep or not host:
        raise CloudAddressError(f"cloud address {target!r} is not HOST:PORT; {hint}")
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise CloudAddressError(f"cloud address {target!r} has a bad port {port!r} (1..65535)")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise CloudAddressError(f"cloud address {target!r}: bad IPv6 host; {hint}") from None
    elif len(host) > 253 or not all(_HOST_LABEL.match(label) for label in host.split(".")):
        raise CloudAddressError(f"cloud address {target!r} has a bad host {host!r}; {hint}")
    return host, int(port)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a call is retried.

    Attributes:
        attempts: total attempts (1 = no retry).
        backoff_s: wait before the second attempt; multiplied by ``multiplier`` after each.
        max_backoff_s: cap of one wait.
        breaker_failures: after this many calls in a row failed with a retryable code or
            a passed deadline, the cloud counts as down: calls fail at once, sending
            nothing (no radio energy, no waiting), until ``breaker_cooldown_s`` passes and
            one call probes it again. 0 turns the breaker off.
    """

    attempts: int = 3
    backoff_s: float = 0.05
    multiplier: float = 2.0
    max_backoff_s: float = 1.0
    breaker_failures: int = 3
    breaker_cooldown_s: float = 5.0

    def waits(self) -> list[float]:
        """The waits between attempts, in seconds (``attempts - 1`` of them)."""
        return [
            min(self.max_backoff_s, self.backoff_s * self.multiplier**i)
            for i in range(self.attempts - 1)
        ]


class CloudError(Exception):
    """The cloud gave no usable answer.

    Attributes:
        code: gRPC status name (or ``INVALID_RESPONSE``).
        attempts: attempts made.
        bytes_sent: request bytes put on the wire over all attempts (an attempt that
            never reached a connected server, e.g. an unreachable host, sent none).
    """

    def __init__(self, code: str, message: str, attempts: int, bytes_sent: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.attempts, self.bytes_sent = code, attempts, bytes_sent


@dataclass(frozen=True)
class CloudAnswer:
    """Probabilities (N, K) from the cloud, and what getting them cost on the wire."""

    probs: np.ndarray
    attempts: int
    bytes_sent: int
    bytes_received: int
    failed_bytes: int  # bytes of the attempts that failed before the one that answered


def protocol_calls(channel: grpc.Channel) -> dict[str, grpc.UnaryUnaryMultiCallable]:
    """Callables of every unary protocol method on ``channel``, by method name."""
    return {
        name: channel.unary_unary(
            method_path(name),
            request_serializer=req.SerializeToString,
            response_deserializer=resp.FromString,
        )
        for name, (req, resp) in UNARY_METHODS.items()
    }


class CloudClient:
    """Calls one model of an Open Inference Protocol server.

    Args:
        target: ``HOST:PORT``.
        model: model name on the server.
        deadline_s: deadline of each attempt.
        retry: retry policy for UNAVAILABLE / RESOURCE_EXHAUSTED.
        token: bearer token, sent as ``authorization`` metadata.
        credentials: TLS channel credentials (None: plaintext).
        wire_datatype: ``fp32`` (what the protocol metadata advertises), ``uint8`` (8-bit
            pixels, a quarter of the bytes; acnn serve accepts it), or ``auto``: uint8
            when every pixel is a whole number in 0..255, else fp32.
        sleep: waits between attempts (passed in so tests need not sleep).
    """

    def __init__(
        self,
        target: str,
        *,
        model: str = "cloud",
        deadline_s: float = 2.0,
        retry: RetryPolicy = RetryPolicy(),
        token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        wire_datatype: str = "auto",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if wire_datatype not in WIRE_DATATYPES:
            raise ValueError(f"wire_datatype must be one of {WIRE_DATATYPES}")
        parse_target(target)
        self.target, self.model, self.deadline_s = target, model, deadline_s
        self.retry, self.wire_datatype, self.sleep = retry, wire_datatype, sleep
        self.clock, self._failures, self._down_until = clock, 0, -float("inf")
        self._lock = threading.Lock()
        self.metadata = bearer(token) if token else None
        options = [("grpc.max_receive_message_length", 64 * 2**20)]
        self.channel = (
            grpc.secure_channel(target, credentials, options)
            if credentials is not None
            else grpc.insecure_channel(target, options)
        )
        self._calls = protocol_calls(self.channel)
        # Whether a request can have left the device: the channel's connection state,
        # watched so that an attempt on a channel that was never connected charges nothing.
        self._connected, self._connections = False, 0
        self.channel.subscribe(self._on_connectivity, try_to_connect=False)

    def _on_connectivity(self, state: grpc.ChannelConnectivity) -> None:
        with self._lock:
            self._connected = state is grpc.ChannelConnectivity.READY
            self._connections += self._connected

    def _link_state(self) -> tuple[bool, int]:
        with self._lock:
            return self._connected, self._connections

    def _reached(self, code: grpc.StatusCode, before: tuple[bool, int]) -> bool:
        """Whether an attempt that failed with ``code`` put its request on the wire.

        Any status other than UNAVAILABLE or DEADLINE_EXCEEDED came from a server, so it
        was sent; with those two, only if the channel was connected at some point of it.
        """
        if code not in _UNSENT_CODES:
            return True
        connected, connections = self._link_state()
        return before[0] or connected or connections != before[1]

    def check_model(self, timeout_s: float = 2.0) -> bool:
        """Whether the server is reachable; raises if it answers that it lacks the model.

        Returns:
            True when the server answered ModelMetadata for this client's model, False
            when it could not be reached (or answered nothing usable) within ``timeout_s``.

        Raises:
            CloudModelError: the server answered NOT_FOUND: it serves no such model.
        """
        try:
            request = pb.ModelMetadataRequest(name=self.model)
            self._calls["ModelMetadata"](request, timeout=timeout_s, metadata=self.metadata)
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                raise CloudModelError(
                    f"the cloud at {self.target} serves no model {self.model!r} "
                    f"({exc.details() or 'NOT_FOUND'}); pass --model NAME"
                ) from None
            return False
        return True

    def ready(self, timeout_s: float = 1.0) -> bool:
        """Whether the server answers ServerReady with ready=true within ``timeout_s``."""
        try:
            call = self._calls["ServerReady"]
            return call(pb.ServerReadyRequest(), timeout=timeout_s, metadata=self.metadata).ready
        except grpc.RpcError:
            return False

    def model_ready(self, timeout_s: float = 1.0) -> bool:
        """Whether the server answers ModelReady for this client's model with ready=true."""
        try:
            call = self._calls["ModelReady"]
            request = pb.ModelReadyRequest(name=self.model)
            return call(request, timeout=timeout_s, metadata=self.metadata).ready
        except grpc.RpcError:
            return False

    def infer(
        self, images: np.ndarray, parameters: Mapping[str, bool | int | float | str] | None = None
    ) -> CloudAnswer:
        """Probabilities of ``images`` (N, C, H, W, native pixel scale) from the cloud.

        Raises:
            CloudError: every attempt failed, the answer was malformed, or the cloud is
                considered down (``attempts`` 0, nothing sent).
        """
        with self._lock:
            if self.clock() < self._down_until:
                raise CloudError("UNAVAILABLE", "cloud considered down (circuit open)", 0, 0)
        try:
            answer = self._infer(images, parameters)
        except CloudError as exc:
            self._record(exc.code in _DOWN_CODES)
            raise
        self._record(False)
        return answer

    def _record(self, failed: bool) -> None:
        with self._lock:
            self._failures = self._failures + 1 if failed else 0
            if self.retry.breaker_failures and self._failures >= self.retry.breaker_failures:
                self._down_until = self.clock() + self.retry.breaker_cooldown_s
                self._failures = self.retry.breaker_failures - 1  # one probe, then open again

    def _infer(self, images, parameters) -> CloudAnswer:
        request = infer_request(
            self.model,
            {INPUT_NAME: self._wire(images)},
            outputs=(OUTPUT_NAME,),
            parameters=parameters,
        )
        size = request.ByteSize()
        waits = self.retry.waits()
        failed_bytes = 0  # of failed attempts whose request did leave the device
        for attempt in range(1, self.retry.attempts + 1):
            before = self._link_state()
            try:
                response = self._calls["ModelInfer"](
                    request, timeout=self.deadline_s, metadata=self.metadata
                )
            except grpc.RpcError as exc:
                code = exc.code()
                failed_bytes += size if self._reached(code, before) else 0
                if code not in RETRYABLE or attempt == self.retry.attempts:
                    details = exc.details() or ""
                    raise CloudError(code.name, details, attempt, failed_bytes) from None
                self.sleep(waits[attempt - 1])
                continue
            probs = self._probs(response, len(images), attempt, failed_bytes + size)
            return CloudAnswer(
                probs, attempt, failed_bytes + size, response.ByteSize(), failed_bytes
            )
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wire(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if self.wire_datatype == "fp32":
            return images.astype(np.float32, copy=False)
        eight_bit = bool(
            images.size
            and images.min() >= 0
            and images.max() <= 255
            and np.array_equal(images, np.round(images))
        )
        if self.wire_datatype == "uint8" and not eight_bit:
            raise ValueError("wire datatype uint8 needs whole pixels in 0..255")
        return images.astype(np.uint8 if eight_bit else np.float32)

    def _probs(self, response, n: int, attempt: int, sent: int) -> np.ndarray:
        try:
            probs = response_outputs(response)[OUTPUT_NAME]
        except (TensorError, KeyError) as exc:
            raise CloudError("INVALID_RESPONSE", repr(exc), attempt, sent) from None
        probs = np.asarray(probs, dtype=np.float32)
        if probs.ndim != 2 or probs.shape[0] != n or not np.isfinite(probs).all():
            message = f"probabilities of shape {probs.shape} for {n} images"
            raise CloudError("INVALID_RESPONSE", message, attempt, sent)
        return probs

    def close(self) -> None:
        self.channel.unsubscribe(self._on_connectivity)
        self.channel.close()

    def __enter__(self) -> CloudClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
