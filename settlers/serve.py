"""Run one producer service: configuration, start-up, readiness line, clean shutdown.

``settlers serve`` is a thin typer layer over :func:`run`; everything that can be
wrong in the configuration is a :class:`ConfigError` with a message for the user.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

from settlers import wire
from settlers.economy import DEFAULT_ECONOMY, EconomyError, Item, load_economy
from settlers.grpc_service import build_server
from settlers.http_service import build_app, build_side_app
from settlers.peerbytes import Peer, PeerBytes
from settlers.producer import Producer
from settlers.wire import WireProtocol

__all__ = ["ConfigError", "ServeConfig", "parse_inputs", "resolve_inputs", "run", "serve"]

LoopKind = Literal["auto", "uvloop", "asyncio"]


class ConfigError(ValueError):
    """The service configuration is invalid; the message says which flag and why."""


@dataclass(frozen=True)
class ServeConfig:
    item: str
    protocol: WireProtocol = "http"
    port: int = 8080  # 0 picks a free port (printed in the ready line)
    host: str = "0.0.0.0"
    economy: str = DEFAULT_ECONOMY
    inputs: Mapping[str, str] = field(default_factory=dict)  # explicit addresses only
    pod_name: str = ""
    sequential: bool = False
    timeout: float = 10.0
    max_size: int = wire.DEFAULT_MAX_SIZE
    metrics_port: int | None = None  # gRPC only: side HTTP server for /healthz, /metrics
    loop: LoopKind = "auto"
    # Per-peer byte counters under Istio's metric names (settlers.peerbytes), for a
    # cluster without a mesh; the workload and namespace are the ones Istio would
    # report for this pod (its Deployment's name), given, never guessed.
    mesh_metrics: bool = False
    workload: str = ""
    namespace: str = ""


def parse_inputs(specs: Iterable[str]) -> dict[str, str]:
    """``["flour=127.0.0.1:9001", "water"]`` -> {"flour": "127.0.0.1:9001", "water": ""}.

    Each spec may itself be a comma-separated list (the SETTLERS_INPUTS form). An
    empty address means "the default", filled in by :func:`resolve_inputs`.
    """
    out: dict[str, str] = {}
    for spec in specs:
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, address = part.partition("=")
            name, address = name.strip(), address.strip()
            if not name:
                raise ConfigError(f"--input {part!r}: expected ITEM=HOST:PORT")
            if address:
                host, sep, port = address.rpartition(":")
                if not sep or not host or not port.isdigit():
                    raise ConfigError(f"--input {part!r}: the address must be HOST:PORT")
            if name in out:
                raise ConfigError(f"--input {name!r} is given twice")
            out[name] = address
    return out


def resolve_inputs(item: Item, given: Mapping[str, str], port: int) -> dict[str, str]:
    """Every input of ``item`` -> address; unset ones default to the Kubernetes service
    DNS name ``<input>:<port>`` (the same port as this service)."""
    unknown = set(given) - set(item.inputs)
    if unknown:
        consumes = ", ".join(item.inputs) or "nothing (it is a raw item)"
        raise ConfigError(f"--input {', '.join(sorted(unknown))}: {item.name!r} consumes "
                          f"{consumes}")
    return {name: given.get(name) or f"{name}:{port}" for name in item.inputs}


def _pod_name(config: ServeConfig) -> str:
    return config.pod_name or os.environ.get("HOSTNAME") or socket.gethostname()


def build_producer(config: ServeConfig) -> Producer:
    try:
        economy = load_economy(config.economy)
    except EconomyError as exc:
        raise ConfigError(f"--economy: {exc}") from None
    if config.item not in economy:
        raise ConfigError(f"--item {config.item!r} is not in economy {economy.name!r}; "
                          f"known items: {', '.join(economy.names)}")
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {config.port}")
    if config.timeout <= 0:
        raise ConfigError(f"--timeout must be > 0 seconds, got {config.timeout}")
    if config.max_size < 1:
        raise ConfigError(f"--max-size must be >= 1 byte, got {config.max_size}")
    item = economy[config.item]
    inputs = resolve_inputs(item, config.inputs, config.port)
    return Producer(item, _pod_name(config), inputs, config.protocol,
                    sequential=config.sequential, timeout=config.timeout,
                    max_size=config.max_size, peers=_peer_bytes(config))


def _peer_bytes(config: ServeConfig) -> PeerBytes | None:
    if not config.mesh_metrics:
        return None
    for flag, value in (("--workload", config.workload), ("--namespace", config.namespace)):
        if not value.strip():
            raise ConfigError(f"--mesh-metrics needs {flag} (SETTLERS_{flag[2:].upper()}): "
                              "the name Istio would report for this pod (the chart sets "
                              "both with metrics.meshBytes)")
        if "/" in value:
            raise ConfigError(f"{flag} {value!r}: a Kubernetes name has no '/'")
    return PeerBytes(Peer(config.workload.strip(), config.namespace.strip()), config.protocol)


async def serve(config: ServeConfig, *, ready: Callable[[str], None] | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None)."""
    producer = build_producer(config)
    stop = stop or _stop_on_signals()
    runners: list[web.AppRunner] = []
    grpc_service = None
    side: int | None = None  # the gRPC side server's port
    try:
        if config.protocol == "http":
            port = await _start_http(build_app(producer), config.host, config.port, runners)
        else:
            grpc_service = build_server(producer, f"{_bracket(config.host)}:{config.port}")
            await grpc_service.start()
            port = grpc_service.port
            if config.metrics_port is not None:
                side = await _start_http(build_side_app(producer.metrics), config.host,
                                         config.metrics_port, runners)
        inputs = ", ".join(f"{k}={v}" for k, v in producer.inputs.items()) or "none"
        message = (f"settlers serve: {config.item} (pod {producer.pod}) ready, "
                   f"{config.protocol} on {config.host}:{port} (inputs: {inputs})")
        if side is not None:  # --metrics-port 0 picks one: say which
            message += f", /metrics on {config.host}:{side}"
        (ready or _print_flush)(message)
        await stop.wait()
    finally:
        if grpc_service is not None:
            await grpc_service.stop(grace=1.0)
        for runner in runners:
            await runner.cleanup()
        await producer.close()


async def _start_http(app: web.Application, host: str, port: int,
                      runners: list[web.AppRunner]) -> int:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    runners.append(runner)
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return int(runner.addresses[0][1])


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _stop_on_signals() -> asyncio.Event:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, event.set)
    return event


def _print_flush(message: str) -> None:
    print(message, flush=True)


def run(config: ServeConfig) -> None:
    """Blocking entry point: pick the event loop and serve until a signal."""
    with asyncio.Runner(loop_factory=_loop_factory(config.loop)) as runner:
        runner.run(serve(config))


def _loop_factory(kind: LoopKind) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if kind == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if kind == "uvloop":
            raise ConfigError("--loop uvloop: uvloop is not installed") from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory

