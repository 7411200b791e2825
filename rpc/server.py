"""The cloud server: the design's stages over the Open Inference Protocol (gRPC).

:func:`make_server` builds and binds a :class:`CloudServer` (tests start it in-process on
``127.0.0.1:0``); :func:`serve` runs one until SIGTERM or SIGINT, then drains: health
turns NOT_SERVING, ServerReady false, new calls are refused, calls in flight finish
within the grace period, queued batches are computed. Stages run in ONNX Runtime unless
the design was priced for another runtime or another is asked for
(:func:`~rpc.repository.serving_runtime`), each behind its own batcher; the announce line
says "priced for X, run in Y" where the two differ. The servicer is thin: it turns
:class:`~rpc.repository.RequestError` and batcher refusals into status codes and logs one
JSON line per call at debug level (logger ``acnn.rpc.server``).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc
import torch
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

import adaptive_cnn
from adaptive_cnn.run_folder import RunFolder
from adaptive_cnn.stage import OUTPUT_NAME
from energy_models.runtimes import RUNTIMES
from rpc.auth import TokenAuthInterceptor, read_token, server_credentials
from rpc.batching import Closed, DeadlineExpired, QueueFull
from rpc.errors import ServerConfigError
from rpc.generated import acnn_oip_pb2 as pb
from rpc.protocol import (
    SERVICE,
    STREAM_METHOD,
    UNARY_METHODS,
    get_parameters,
    infer_response,
)
from rpc.repository import VERSION, ModelRepository, RequestError, priced_runtime

log = logging.getLogger("acnn.rpc.server")

SERVER_NAME = "acnn"


@dataclass(frozen=True)
class ServerConfig:
    """Settings of :func:`make_server` (``acnn serve`` flags).

    Attributes:
        host, port: where to listen; port 0 picks a free port.
        max_batch_size: most images per model call (and per request).
        max_queue_delay_ms: how long a request waits for others to batch with.
        max_queue_size: requests queued per model before RESOURCE_EXHAUSTED.
        workers: concurrent calls handled; more are refused with RESOURCE_EXHAUSTED.
        max_message_bytes: largest request or response message.
        max_wait_s: longest a call without a deadline waits for its batch.
        drain_grace_s: how long calls in flight may finish after SIGTERM.
        tls_cert, tls_key: PEM files to serve TLS (both or neither).
        tls_client_ca: PEM CA that client certificates must be signed by (mutual TLS).
        token_file: file holding the bearer token calls must present.
        runtime: how models run: ``onnxruntime``, ``torchscript`` (compiled) or
            ``torch`` (eager); None: the runtime the design was priced for where the run
            folder records one, else ``onnxruntime``
            (:func:`~rpc.repository.serving_runtime`).
        instances: batches of one model computed at once (each on its own thread; ONNX
            Runtime and torch release the GIL while a model runs).
        threads: intra-op threads of each ONNX Runtime session; None: torch's thread
            count over ``instances``.
    """

    host: str = "127.0.0.1"
    port: int = 8001
    max_batch_size: int = 32
    max_queue_delay_ms: float = 2.0
    max_queue_size: int = 256
    workers: int = 64
    max_message_bytes: int = 16 * 2**20
    max_wait_s: float = 30.0
    drain_grace_s: float = 10.0
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    token_file: str | None = None
    runtime: str | None = None
    instances: int = 1
    threads: int | None = None

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ServerConfigError("TLS needs both --tls-cert and --tls-key")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ServerConfigError("--tls-client-ca needs --tls-cert and --tls-key")
        if min(self.max_batch_size, self.max_queue_size, self.workers, self.instances) < 1:
            raise ServerConfigError("batch size, queue size, workers and instances must be >= 1")
        if self.threads is not None and self.threads < 1:
            raise ServerConfigError(f"threads must be >= 1, got {self.threads}")
        if self.runtime is not None and self.runtime not in RUNTIMES:
            runtimes = ", ".join(RUNTIMES)
            raise ServerConfigError(f"runtime {self.runtime!r}; use {runtimes}")


class _State:
    def __init__(self) -> None:
        self.ready = True


class InferenceServicer:
    """The protocol's methods over a :class:`ModelRepository`."""

    def __init__(self, repository: ModelRepository, config: ServerConfig, state: _State):
        self.repo, self.config, self.state = repository, config, state

    def ServerLive(self, request, context, note):
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request, context, note):
        return pb.ServerReadyResponse(ready=self.state.ready)

    def ModelReady(self, request, context, note):
        note["model"] = request.name
        self.repo.get(request.name, request.version)
        return pb.ModelReadyResponse(ready=self.state.ready)

    def ServerMetadata(self, request, context, note):
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=adaptive_cnn.__version__)

    def ModelMetadata(self, request, context, note):
        note["model"] = request.name
        return self.repo.get(request.name, request.version).metadata()

    def ModelInfer(self, request, context, note):
        note.update(model=request.model_name, id=request.id)
        model, images = self.repo.decode(request)
        note.update(images=len(images), params=get_parameters(request.parameters))
        wait_s = self._wait_s(context)
        try:
            future = model.batcher.submit(images, time.monotonic() + wait_s)
        except QueueFull as exc:
            raise RequestError("RESOURCE_EXHAUSTED", str(exc)) from None
        except Closed as exc:
            raise RequestError("UNAVAILABLE", str(exc)) from None
        try:
            probs = future.result(timeout=wait_s)
        except (futures.TimeoutError, DeadlineExpired):
            future.cancel()
            raise RequestError("DEADLINE_EXCEEDED", "no answer within the deadline") from None
        return infer_response(request, VERSION, {OUTPUT_NAME: probs})

    def _wait_s(self, context) -> float:
        remaining = context.time_remaining()
        if remaining is None:
            return self.config.max_wait_s
        return max(0.0, min(remaining, self.config.max_wait_s))


class CloudServer:
    """A bound gRPC server over a design's stages; :meth:`start`, then :meth:`drain`."""

    def __init__(self, run: RunFolder, config: ServerConfig, models: tuple[str, ...] | None):
        self.config, self.state = config, _State()
        self.repository = ModelRepository(
            run,
            max_batch_size=config.max_batch_size,
            max_queue_delay_ms=config.max_queue_delay_ms,
            max_queue_size=config.max_queue_size,
            names=models,
            runtime=config.runtime,
            instances=config.instances,
            threads=config.threads,
        )
        interceptors = []
        if config.token_file:
            interceptors.append(TokenAuthInterceptor(read_token(config.token_file)))
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="acnn-rpc"),
            interceptors=interceptors,
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", config.max_message_bytes),
                ("grpc.max_send_message_length", config.max_message_bytes),
            ],
            maximum_concurrent_rpcs=config.workers,
        )
        servicer = InferenceServicer(self.repository, config, self.state)
        self.server.add_generic_rpc_handlers((_handlers(servicer),))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = self._bind()
        self._drained = threading.Event()

    def _bind(self) -> int:
        address = f"{self.config.host}:{self.config.port}"
        c = self.config
        try:
            if c.tls_cert is not None and c.tls_key is not None:
                creds = server_credentials(c.tls_cert, c.tls_key, c.tls_client_ca)
                port = self.server.add_secure_port(address, creds)
            else:
                port = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise ServerConfigError(f"cannot listen on {address}: {exc}") from exc
        if port == 0:
            raise ServerConfigError(f"cannot listen on {address}")
        return port

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.port}"

    def start(self) -> CloudServer:
        self.server.start()
        for service in ("", SERVICE):
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        return self

    def drain(self, grace_s: float | None = None) -> None:
        """Stop taking calls, let those in flight finish within ``grace_s``, then stop."""
        if self._drained.is_set():
            return
        self.state.ready = False
        self.health.enter_graceful_shutdown()
        grace = self.config.drain_grace_s if grace_s is None else grace_s
        self.server.stop(grace).wait(grace + 5)
        self.repository.close(timeout=grace + 5)
        self._drained.set()

    def wait_drained(self, timeout: float | None = None) -> bool:
        return self._drained.wait(timeout)


def make_server(
    run: RunFolder, config: ServerConfig, models: tuple[str, ...] | None = None
) -> CloudServer:
    """Build and bind (not start) a server for ``run``'s stages (``models``: a subset)."""
    return CloudServer(run, config, models)


def serve(run: RunFolder, config: ServerConfig, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGTERM/SIGINT, then drain; ``announce`` hears the address once ready."""
    server = make_server(run, config).start()
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        names = ", ".join(server.repository.models)
        announce(f"acnn serve: {names} ({runtime_note(server.repository)}) on {server.address}")
        while not stop.wait(0.5):
            pass
        announce("acnn serve: draining")
        server.drain()
        announce("acnn serve: stopped")
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def runtime_note(repository: ModelRepository) -> str:
    """What the stages run in, and what the design was priced for where that differs."""
    runtime, priced = repository.runtime, priced_runtime(repository.run)
    threads = repository.threads if runtime == "onnxruntime" else torch.get_num_threads()
    note = f"{runtime}, {repository.instances} instance(s) x {threads} intra-op thread(s)"
    if priced != runtime:
        note = f"priced for {priced or 'an unrecorded runtime'}, run in {note}"
    return note


def _handlers(servicer: InferenceServicer) -> grpc.GenericRpcHandler:
    handlers = {}
    for name, (request_type, response_type) in UNARY_METHODS.items():
        handlers[name] = grpc.unary_unary_rpc_method_handler(
            _logged(name, getattr(servicer, name)),
            request_deserializer=request_type.FromString,
            response_serializer=response_type.SerializeToString,
        )
    handlers[STREAM_METHOD] = grpc.stream_stream_rpc_method_handler(
        _stream(servicer),
        request_deserializer=pb.ModelInferRequest.FromString,
        response_serializer=pb.ModelStreamInferResponse.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


def _logged(method: str, fn):
    def handle(request, context):
        note: dict = {}
        started, code = time.perf_counter(), "OK"
        try:
            return fn(request, context, note)
        except RequestError as exc:
            code = exc.code
            context.abort(getattr(grpc.StatusCode, exc.code), str(exc))
        finally:
            _log_call(method, code, started, context, note)

    return handle


def _stream(servicer: InferenceServicer):
    def handle(requests: Iterator[pb.ModelInferRequest], context):
        for request in requests:
            note: dict = {}
            started, code = time.perf_counter(), "OK"
            try:
                response = servicer.ModelInfer(request, context, note)
                yield pb.ModelStreamInferResponse(infer_response=response)
            except RequestError as exc:
                code = exc.code
                yield pb.ModelStreamInferResponse(error_message=f"{exc.code}: {exc}")
            finally:
                _log_call(STREAM_METHOD, code, started, context, note)

    return handle


def _log_call(method: str, code: str, started: float, context, note: dict) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    record = {"method": method, "code": code, "ms": round((time.perf_counter() - started) * 1e3, 3)}
    record.update(note)
    record["peer"] = context.peer()
    log.debug(json.dumps(record, default=str, sort_keys=True))
