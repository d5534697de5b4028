"""Client for producer services, over HTTP (aiohttp) or gRPC (grpc.aio).

The order app and every producer (to fetch its inputs) talk to services through
this module only, so both protocols behave the same to their callers::

    async with open_client("127.0.0.1:9000", "grpc") as client:
        result = await client.produce("bread", count=1, size=4096)
        print(result.payload_bytes, [hop.pod for hop in result.trace])

One client holds one connection pool (HTTP) or one channel (gRPC) to one target,
reused across calls. Every failure is an :class:`OrderError` whose ``kind`` is one
of ``invalid`` (the service refused the order), ``upstream`` (one of its inputs
failed; the message names it), ``timeout``, ``connect`` (nothing answers there) or
``broken`` (the connection was reset or closed during the order: an overloaded or
restarting service, not a wrong address).

A client names its workload to the service (``x-settlers-workload``) when given a
``caller`` or when SETTLERS_WORKLOAD is set, and with a ``meter`` counts the bytes of
each answered call per destination workload (``settlers serve --mesh-metrics``;
:mod:`settlers.peerbytes`). Without either it sends and counts nothing extra.
"""

from __future__ import annotations

import asyncio
import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol, Self

import aiohttp
import grpc

from settlers import wire
from settlers.peerbytes import Peer, PeerBytes, caller_from_env
from settlers.proto import settlers_pb2, settlers_pb2_grpc
from settlers.trace import Hop, decode_trace
from settlers.wire import WireProtocol

__all__ = ["OrderError", "ProduceResult", "ProducerClient", "open_client"]

ErrorKind = Literal["invalid", "upstream", "timeout", "connect", "broken"]


@dataclass
class ProduceResult:
    item: str
    count: int
    size: int
    payload_bytes: int
    trace: list[Hop]
    latency_s: float


class OrderError(Exception):
    """An order failed; ``kind`` says how, ``str(err)`` says what happened where."""

    def __init__(self, kind: ErrorKind, detail: str, *, target: str = "") -> None:
        super().__init__(f"{target}: {detail}" if target else detail)
        self.kind: ErrorKind = kind
        self.target = target
        self.detail = detail  # the message without the target, for nesting in others


class ProducerClient(Protocol):
    async def produce(self, item: str, count: int = 1, size: int = 16, *, caller: str = "",
                      timeout: float | None = None) -> ProduceResult: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> ProducerClient: ...

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None: ...


def open_client(target: str, protocol: WireProtocol, *, timeout: float = 30.0,
                caller: Peer | None = None, meter: PeerBytes | None = None) -> ProducerClient:
    """A client for the service at ``target`` ("host:port"); ``timeout`` is per call.

    ``caller``: the workload named to the service (default: from SETTLERS_WORKLOAD and
    SETTLERS_NAMESPACE, none when unset); ``meter``: where answered calls are counted.
    """
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"target must be 'host:port', got {target!r}")
    me = caller or caller_from_env()
    if protocol == "http":
        return _HttpClient(target, timeout, me, meter)
    if protocol == "grpc":
        return _GrpcClient(target, timeout, me, meter)
    raise ValueError(f"protocol must be 'http' or 'grpc', got {protocol!r}")


class _BaseClient(ABC):
    def __init__(self, target: str, timeout: float, caller: Peer | None,
                 meter: PeerBytes | None) -> None:
        self.target = target
        self.timeout = timeout
        self._caller = caller
        self._meter = meter

    @abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def _error(self, kind: ErrorKind, detail: str) -> OrderError:
        return OrderError(kind, detail, target=self.target)


_JSON_HEADERS = {"Content-Type": "application/json"}
# A trace header grows with the supply chain (about 40 bytes a hop); aiohttp's default
# 8 KiB field limit would cut off the deepest economies.
_MAX_HEADER = 1 << 20


class _HttpClient(_BaseClient):
    def __init__(self, target: str, timeout: float, caller: Peer | None,
                 meter: PeerBytes | None) -> None:
        super().__init__(target, timeout, caller, meter)
        self._url = f"http://{target}{wire.PRODUCE_PATH}"
        self._headers = _JSON_HEADERS | ({wire.WORKLOAD_HEADER: caller.header} if caller else {})
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily: an aiohttp session belongs to the loop that first uses it.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=10),
                max_line_size=_MAX_HEADER,
                max_field_size=_MAX_HEADER,
                auto_decompress=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def produce(self, item: str, count: int = 1, size: int = 16, *, caller: str = "",
                      timeout: float | None = None) -> ProduceResult:
        body = json.dumps({"item": item, "count": count, "size": size,
                           "caller": caller}).encode()
        limit = aiohttp.ClientTimeout(total=self.timeout if timeout is None else timeout)
        session = self._get_session()
        start = time.perf_counter()
        # One retry when a pooled keep-alive connection turns out to be dead (the
        # service restarted since): the request never reached it, so it is safe.
        for attempt in (0, 1):
            try:
                async with session.post(self._url, data=body, headers=self._headers,
                                        timeout=limit) as resp:
                    payload = await resp.read()
                    status = resp.status
                    trace_text = resp.headers.get(wire.TRACE_HEADER)
                    server = resp.headers.get(wire.WORKLOAD_HEADER)
                break
            except aiohttp.ServerDisconnectedError as exc:
                if attempt == 0:
                    continue
                raise self._error("broken", f"connection lost: {exc}") from None
            except TimeoutError:
                raise self._error("timeout", f"no answer within {limit.total:g} s") from None
            except aiohttp.ClientConnectorError as exc:
                raise self._error("connect", f"cannot connect: {exc.os_error}") from None
            except (aiohttp.ClientOSError, aiohttp.ClientPayloadError) as exc:
                # Connected, then reset or cut short: the service is there but dropped
                # this order (an overflowing accept queue under overload does this).
                raise self._error("broken", f"{type(exc).__name__}: {exc}") from None
            except aiohttp.ClientError as exc:
                raise self._error("connect", f"{type(exc).__name__}: {exc}") from None
        latency = time.perf_counter() - start
        if self._meter is not None:
            self._meter.called(Peer.parse(server), len(body),
                               len(payload) + len(trace_text or ""))
        if status != 200:
            raise self._status_error(status, payload)
        trace = decode_trace(trace_text) if trace_text else []
        return ProduceResult(item=trace[0].item if trace else item, count=count, size=size,
                             payload_bytes=len(payload), trace=trace, latency_s=latency)

    def _status_error(self, status: int, body: bytes) -> OrderError:
        try:
            message = str(json.loads(body)["error"])
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {status}: " + (body[:200].decode("utf-8", "replace") or "(empty)")
        return self._error(_HTTP_KINDS.get(status, "upstream"), message)


_HTTP_KINDS: dict[int, ErrorKind] = {400: "invalid", 504: "timeout"}
_GRPC_KINDS: dict[grpc.StatusCode, ErrorKind] = {
    grpc.StatusCode.INVALID_ARGUMENT: "invalid",
    grpc.StatusCode.DEADLINE_EXCEEDED: "timeout",
}


class _GrpcClient(_BaseClient):
    def __init__(self, target: str, timeout: float, caller: Peer | None,
                 meter: PeerBytes | None) -> None:
        super().__init__(target, timeout, caller, meter)
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None
        self._metadata = ((wire.WORKLOAD_HEADER, caller.header),) if caller else None

    def _get_stub(self) -> Any:
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(
                self.target, options=wire.grpc_channel_options())
            self._stub = settlers_pb2_grpc.ProducerStub(self._channel)  # type: ignore[no-untyped-call]
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None

    async def produce(self, item: str, count: int = 1, size: int = 16, *, caller: str = "",
                      timeout: float | None = None) -> ProduceResult:
        if count < 0 or size < 0:  # protobuf's unsigned fields would refuse them obscurely
            raise self._error("invalid", f"count and size must be >= 0 (got {count}, {size})")
        request = settlers_pb2.ProduceRequest(item=item, count=count, size=size, caller=caller)
        limit = self.timeout if timeout is None else timeout
        stub = self._get_stub()
        start = time.perf_counter()
        try:
            call = stub.Produce(request, timeout=limit, metadata=self._metadata)
            resp = await call
        except grpc.aio.AioRpcError as exc:
            self._count(request, exc.initial_metadata(), len((exc.details() or "").encode()),
                        answered_only=True)
            raise self._rpc_error(exc, limit) from None
        except asyncio.CancelledError:
            raise
        latency = time.perf_counter() - start
        if self._meter is not None:
            self._count(request, await call.initial_metadata(), resp.ByteSize())
        trace = [Hop(h.item, h.pod, h.caller, h.bytes, h.elapsed_ms) for h in resp.trace]
        return ProduceResult(item=resp.item or item, count=count, size=size,
                             payload_bytes=len(resp.payload), trace=trace, latency_s=latency)

    def _count(self, request: Any, metadata: Any, response_bytes: int, *,
               answered_only: bool = False) -> None:
        if self._meter is None:
            return
        server = dict(metadata or ()).get(wire.WORKLOAD_HEADER)
        # A failed call counts only when a producer answered it (it named itself):
        # a refused connection or a deadline carried no answer.
        if server is None and answered_only:
            return
        self._meter.called(Peer.parse(server), request.ByteSize(), response_bytes)

    def _rpc_error(self, exc: grpc.aio.AioRpcError, limit: float) -> OrderError:
        code = exc.code()
        details = exc.details() or ""
        sent_kind = dict(exc.trailing_metadata() or ()).get(wire.ERROR_KIND_KEY)
        if sent_kind in wire.ERROR_KINDS:  # the service's own message: pass it on as is
            return self._error(sent_kind, details)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return self._error("timeout", f"no answer within {limit:g} s")
        if code == grpc.StatusCode.UNAVAILABLE:
            return self._error("connect", f"cannot connect: {details}")
        return self._error(_GRPC_KINDS.get(code, "upstream"), f"{code.name}: {details}")
