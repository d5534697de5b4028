"""What a producer service does, independent of the protocol it speaks.

Producing ``count`` units of ``size`` bytes means: check the order (before any
allocation), ask every input for its share (``count * quantity`` units of the same
size; in parallel by default), optionally burn CPU, then answer with the payload and
the trace (this pod's hop first, then the inputs' traces in input order). The HTTP
and gRPC front ends only translate to and from their wire formats.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from settlers import wire
from settlers.client import OrderError, ProducerClient, ProduceResult, open_client
from settlers.economy import Item
from settlers.metrics import ServiceMetrics
from settlers.peerbytes import PeerBytes
from settlers.trace import Hop
from settlers.wire import WireProtocol

__all__ = ["BadRequest", "Order", "Producer", "Product", "UpstreamError", "parse_order"]


class BadRequest(ValueError):
    """The order itself is wrong (HTTP 400 / INVALID_ARGUMENT); the message says why."""


class UpstreamError(Exception):
    """An input failed (HTTP 502 / UNAVAILABLE, or 504 / DEADLINE_EXCEEDED on timeout)."""

    def __init__(self, input_item: str, address: str, cause: OrderError) -> None:
        super().__init__(f"input {input_item!r} at {address}: {cause.detail}")
        self.input_item = input_item
        self.address = address
        self.timeout = cause.kind == "timeout"


@dataclass(frozen=True, slots=True)
class Order:
    item: str  # "" means this service's item
    count: int
    size: int
    caller: str = ""


@dataclass(frozen=True, slots=True)
class Product:
    item: str
    count: int
    payload: bytes
    trace: list[Hop]


_ORDER_KEYS = {"item", "count", "size", "caller"}


def parse_order(data: Any) -> Order:
    """An Order from a decoded JSON body; types are checked here, bounds by the Producer."""
    if not isinstance(data, dict):
        raise BadRequest('the body must be a JSON object like {"count": 1, "size": 16}')
    unknown = set(data) - _ORDER_KEYS
    if unknown:
        raise BadRequest(f"unknown field(s) {sorted(unknown)}; allowed: {sorted(_ORDER_KEYS)}")
    for key in ("count", "size"):
        if key not in data:
            raise BadRequest(f"missing field {key!r} (an integer)")
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"{key!r} must be an integer, got {value!r}")
    for key in ("item", "caller"):
        if not isinstance(data.get(key, ""), str):
            raise BadRequest(f"{key!r} must be a string, got {data[key]!r}")
    return Order(item=data.get("item", ""), count=data["count"], size=data["size"],
                 caller=data.get("caller", ""))


@functools.lru_cache(maxsize=16)
def _zeros(n: int) -> bytes:
    # Payloads are zero bytes, cached per length: an order never allocates its payload
    # afresh, and the HTTP front end sends this very object without copying. (Large
    # zero buffers come from calloc, i.e. shared zero pages, so the cache is cheap.)
    return bytes(n)


@dataclass(frozen=True, slots=True)
class _Input:
    item: str
    address: str
    quantity: int
    client: ProducerClient


class Producer:
    """One pod's producer: ``item`` served as ``pod``, inputs at ``inputs[item]``."""

    def __init__(self, item: Item, pod: str, inputs: Mapping[str, str],
                 protocol: WireProtocol, *, sequential: bool = False,
                 timeout: float = 10.0, max_size: int = wire.DEFAULT_MAX_SIZE,
                 metrics: ServiceMetrics | None = None,
                 peers: PeerBytes | None = None) -> None:
        missing = set(item.inputs) - set(inputs)
        extra = set(inputs) - set(item.inputs)
        if missing or extra:
            raise ValueError(f"item {item.name!r} consumes {sorted(item.inputs)}; "
                             f"addresses were given for {sorted(inputs)}")
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        self.item = item
        self.pod = pod
        self.protocol = protocol
        self.sequential = sequential
        self.timeout = timeout
        self.max_size = max_size
        self.metrics = metrics or ServiceMetrics(item.name, protocol)
        # Per-peer bytes under Istio's names (--mesh-metrics): counted by the clients
        # of the inputs and the front ends, exported on the same /metrics.
        self.peers = peers
        if peers is not None:
            self.metrics.registry.register(peers)
        caller = peers.me if peers is not None else None
        self._inputs = [
            _Input(name, inputs[name], q, open_client(inputs[name], protocol, timeout=timeout,
                                                      caller=caller, meter=peers))
            for name, q in item.inputs.items()
        ]

    @property
    def inputs(self) -> dict[str, str]:
        return {i.item: i.address for i in self._inputs}

    def check(self, order: Order) -> None:
        """Raise BadRequest unless the order can be served; runs before any allocation."""
        if order.item and order.item != self.item.name:
            raise BadRequest(f"this service produces {self.item.name!r}, not {order.item!r}")
        if not 1 <= order.count <= wire.MAX_COUNT:
            raise BadRequest(f"count must be between 1 and {wire.MAX_COUNT}, got {order.count}")
        if not 1 <= order.size <= self.max_size:
            raise BadRequest(f"size must be between 1 and {self.max_size} bytes "
                             f"(the --max-size cap), got {order.size}")
        if order.count * order.size > self.max_size:
            raise BadRequest(f"count * size = {order.count * order.size} bytes exceeds the "
                             f"cap of {self.max_size} bytes (--max-size)")
        # An input is asked for count * quantity units: refuse here, as a bad order,
        # what the input would refuse anyway (assuming it has the same limits).
        for src in self._inputs:
            units = order.count * src.quantity
            if units > wire.MAX_COUNT or units * order.size > self.max_size:
                raise BadRequest(
                    f"input {src.item!r} would be asked for {units} units of {order.size} "
                    f"bytes (count {order.count} x quantity {src.quantity}), above its limits "
                    f"(at most {wire.MAX_COUNT} units and {self.max_size} bytes)")

    async def produce(self, order: Order) -> Product:
        """Serve one order; raises BadRequest or UpstreamError. Records the metrics."""
        start = time.perf_counter()
        try:
            product = await self._produce(order, start)
        except BadRequest:
            self.metrics.observe("invalid", time.perf_counter() - start)
            raise
        except UpstreamError as exc:
            self.metrics.upstream_error(exc.input_item)
            self.metrics.observe("timeout" if exc.timeout else "upstream",
                                 time.perf_counter() - start)
            raise
        except Exception:
            self.metrics.observe("error", time.perf_counter() - start)
            raise
        self.metrics.observe("ok", time.perf_counter() - start, len(product.payload))
        return product

    async def _produce(self, order: Order, start: float) -> Product:
        self.check(order)
        traces = await self._fetch_inputs(order) if self._inputs else []
        if self.item.work_ms > 0:
            # Per unit: an order for N units costs N times the CPU of one.
            _busy(order.count * self.item.work_ms / 1000.0)
        payload = _zeros(order.count * order.size)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        own = Hop(self.item.name, self.pod, order.caller, len(payload), elapsed_ms)
        trace = [own]
        for t in traces:
            trace.extend(t)
        return Product(self.item.name, order.count, payload, trace)

    async def _fetch_inputs(self, order: Order) -> list[list[Hop]]:
        if not self._inputs:
            return []
        if self.sequential or len(self._inputs) == 1:
            return [(await self._fetch(i, order)).trace for i in self._inputs]
        try:
            # A TaskGroup cancels the other fetches as soon as one fails: no waiting
            # for the slowest input when the order is lost anyway.
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(self._fetch(i, order)) for i in self._inputs]
        except* UpstreamError as group:
            raise group.exceptions[0] from None
        return [t.result().trace for t in tasks]

    async def _fetch(self, src: _Input, order: Order) -> ProduceResult:
        try:
            return await src.client.produce(src.item, order.count * src.quantity, order.size,
                                            caller=self.pod)
        except OrderError as exc:
            raise UpstreamError(src.item, src.address, exc) from None

    async def close(self) -> None:
        for i in self._inputs:
            await i.client.close()


def _busy(seconds: float) -> None:
    # Busy CPU, not sleep: work_ms models computation, which competes for the core
    # with the other pods on the same node the way real work would. Counted in this
    # thread's CPU time, not wall time: on a busy or capped node (a CPU quota) the
    # same work takes longer, as it would on a real node.
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
