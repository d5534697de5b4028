"""Locust users that send Settlers orders over HTTP or gRPC (for `order-app load`).

Run it through ``order-app load`` or directly::

    PROTOCOL=grpc ITEM=bread SIZE=4096 locust -f order_app/locustfile.py \\
        --host 127.0.0.1:9001 --headless -u 10 -r 5 --run-time 30s --csv out/load

The order comes from the environment (``PROTOCOL`` http|grpc, ``ITEM``, ``SIZE``,
``COUNT``) or from the custom arguments ``--item``, ``--size``, ``--count``. Only the
user class of the chosen protocol is runnable: the other is marked abstract, so
locust never mixes the two in one run.

Locust is a closed-loop load generator (each user waits for its answer before the
next order), good for exploring behaviour under many users; for tail latencies
without coordinated omission use ``order-app rate``.

Do not import this module from other code: importing locust monkey-patches the
standard library for gevent.
"""

from __future__ import annotations

import os
import time
from typing import Any

import gevent  # type: ignore[import-untyped]
import grpc
import grpc.experimental.gevent
from locust import FastHttpUser, User, constant, events, stats, task

from settlers import wire
from settlers.proto import settlers_pb2, settlers_pb2_grpc

# `locust` has already monkey-patched the standard library for gevent before it
# imports a locustfile, so the import order above is safe. gRPC's C core must
# cooperate with gevent too, or one blocking call stalls every user of the worker;
# this has to run before any channel exists.
grpc.experimental.gevent.init_gevent()

__all__ = ["GrpcOrderUser", "HttpOrderUser"]

try:
    PROTOCOL = wire.parse_protocol(os.environ.get("PROTOCOL", "http"))
except ValueError as exc:
    raise SystemExit(f"PROTOCOL: {exc}") from None

_TIMEOUT_S = 30.0


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("Settlers order")
    group.add_argument("--item", type=str, env_var="ITEM", default="",
                       help="item to order (empty: whatever the target produces)")
    group.add_argument("--size", type=int, env_var="SIZE", default=16,
                       help="bytes per unit (16 .. 16777216)")
    group.add_argument("--count", type=int, env_var="COUNT", default=1,
                       help="units per order")


_csv_prefix: list[str] = []


@events.init.add_listener  # type: ignore[untyped-decorator]
def _remember_csv(environment: Any, **_kwargs: Any) -> None:
    if environment.parsed_options is not None and environment.parsed_options.csv_prefix:
        _csv_prefix.append(environment.parsed_options.csv_prefix)


@events.quit.add_listener  # type: ignore[untyped-decorator]
def _final_csv_snapshot(**_kwargs: Any) -> None:
    # Locust's --csv files are rewritten by a greenlet once a second and closed at exit
    # without a last rewrite, so a short run can end with an empty table. The users
    # have stopped by now: one more turn of that greenlet records the final totals.
    if _csv_prefix:
        gevent.sleep(stats.CSV_STATS_INTERVAL_SEC + 0.1)


def _order(user: User) -> tuple[str, int, int, str]:
    opts = user.environment.parsed_options
    item, size, count = str(opts.item), int(opts.size), int(opts.count)
    return item, size, count, f"{item or 'produce'} {size}B x{count}"


class HttpOrderUser(FastHttpUser):
    """POST /produce, as fast as each user can (no think time)."""

    abstract = PROTOCOL != "http"
    wait_time = constant(0)

    @task
    def produce(self) -> None:
        item, size, count, name = _order(self)
        body = {"item": item, "count": count, "size": size}
        with self.client.post(wire.PRODUCE_PATH, json=body, name=name,
                              catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:200]}")
            elif len(resp.content or b"") != count * size:
                resp.failure(f"payload was {len(resp.content or b'')} bytes, "
                             f"expected {count * size}")


class GrpcOrderUser(User):
    """settlers.v1.Producer/Produce over one channel per user."""

    abstract = PROTOCOL != "grpc"
    wait_time = constant(0)

    def on_start(self) -> None:
        if not self.host:
            raise SystemExit("give the target with --host HOST:PORT")
        target = self.host.split("://", 1)[-1].rstrip("/")
        self._channel = grpc.insecure_channel(target, options=wire.grpc_channel_options())
        self._stub = settlers_pb2_grpc.ProducerStub(self._channel)  # type: ignore[no-untyped-call]

    def on_stop(self) -> None:
        self._channel.close()

    @task
    def produce(self) -> None:
        item, size, count, name = _order(self)
        request = settlers_pb2.ProduceRequest(item=item, count=count, size=size)
        length = 0
        error: Exception | None = None
        start = time.perf_counter()
        try:
            response = self._stub.Produce(request, timeout=_TIMEOUT_S)
            length = len(response.payload)
            if length != count * size:
                error = ValueError(f"payload was {length} bytes, expected {count * size}")
        except grpc.RpcError as exc:
            error = RuntimeError(f"{exc.code().name}: {exc.details()}")
        self.environment.events.request.fire(
            request_type="grpc", name=name,
            response_time=(time.perf_counter() - start) * 1e3,
            response_length=length, exception=error, context={},
        )
