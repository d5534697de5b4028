"""Constants of the wire protocol shared by the services and the client.

Kept in one place so that the server and the client can never disagree about a
header name, a path or a limit, and so that every layer above (the order app, the
schedulers, the harness, the analysis) names the two protocols with one type.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "DEFAULT_MAX_SIZE",
    "ERROR_KINDS",
    "ERROR_KIND_KEY",
    "MAX_COUNT",
    "PRODUCE_PATH",
    "PROTOCOLS",
    "TRACE_HEADER",
    "WORKLOAD_HEADER",
    "WireProtocol",
    "grpc_channel_options",
    "grpc_server_options",
    "parse_protocol",
]

# How a service talks to its inputs and its clients. Typer and pydantic accept the
# Literal as is (a choice / an enum check), so no StrEnum twin is needed.
WireProtocol = Literal["http", "grpc"]
PROTOCOLS: tuple[WireProtocol, ...] = get_args(WireProtocol)

PRODUCE_PATH = "/produce"
TRACE_HEADER = "X-Settlers-Trace"
# "<namespace>/<workload>" of the sender, in requests and answers (HTTP header and
# gRPC metadata alike; lowercase, as gRPC requires), for the per-peer byte counters
# of `settlers serve --mesh-metrics` (settlers.peerbytes).
WORKLOAD_HEADER = "x-settlers-workload"
# gRPC trailing-metadata key saying which kind of failure a non-OK status is, so a
# client can tell "the server said an input is unavailable" from "cannot connect".
ERROR_KIND_KEY = "settlers-error-kind"
ERROR_KINDS = ("invalid", "upstream", "timeout", "connect", "broken")

MAX_COUNT = 10_000
DEFAULT_MAX_SIZE = 16 * 2**20
# Room for the trace and protobuf framing on top of the payload in one gRPC message.
_GRPC_HEADROOM = 4 * 2**20

# Reconnect quickly after an input restarts (gRPC's default backoff starts at 1 s and
# grows to 120 s, which would turn a short outage into minutes of UNAVAILABLE).
_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    # Not grpc.min_reconnect_backoff_ms: it doubles as the connect timeout, and a low
    # value fails connections over slow (emulated) links; per-call deadlines cover hangs.
    ("grpc.max_reconnect_backoff_ms", 2000),
]


def grpc_server_options(max_size: int) -> list[tuple[str, int]]:
    limit = max_size + _GRPC_HEADROOM
    return [
        ("grpc.max_send_message_length", limit),
        ("grpc.max_receive_message_length", 64 * 2**10),
        ("grpc.so_reuseport", 0),
    ]


def grpc_channel_options() -> list[tuple[str, int]]:
    # -1: the client accepts whatever the server is willing to send; the server caps it.
    return [("grpc.max_receive_message_length", -1), *_RECONNECT]


def parse_protocol(text: str) -> WireProtocol:
    """A protocol as a user types it (``" GRPC "`` -> ``"grpc"``); ValueError names
    the valid ones."""
    value = text.strip().lower()
    for protocol in PROTOCOLS:  # a loop, not `in`, so the result is typed
        if value == protocol:
            return protocol
    raise ValueError(f"unknown protocol {text!r}: use one of {', '.join(PROTOCOLS)}")
