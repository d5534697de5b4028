"""The mesh data plane: per-node L4 proxies in the style of Istio ambient's ztunnel.

Every pod's inputs point at an *egress listener* that belongs to (that pod, that
input service). A connection accepted there is relayed to one endpoint (pod) of
the service, picked round robin among the ready ones, like ztunnel balancing a
Service's endpoints per connection. Bytes between pods on the same node are
written straight through; bytes between nodes go through the :class:`LinkModel`
and are delivered at their computed time by a precise timer. The node of each pod
is looked up per chunk, not per connection, so :meth:`Mesh.set_placement` moves
pods instantly, even for long-lived keep-alive or HTTP/2 connections, and never
restarts a pod. *Ingress listeners* (one per service) are where orders enter: the
order app counts as sitting on the serving pod's node, so ingress never crosses a
link. Back-pressure: a direction stops reading from its source while more than
``high_water`` bytes sit in the emulated link or the destination's buffer is full.

Pods can come and go while the mesh runs (a pod moved to another node is a new pod):
:meth:`Mesh.add_pod` adds one with its egress listeners, outside its service's
endpoints until it is ``serving``; :meth:`Mesh.retire` takes one out for good (never
picked again) and closes its egress listeners, but keeps its workload and counters,
so the bytes it carried stay in every snapshot.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import cast

from harness.backends.emulated.links import LinkModel
from harness.backends.emulated.telemetry import TrafficCounters
from harness.backends.emulated.timer import PreciseScheduler
from results.links import LinkProfile
from results.topology import Topology

__all__ = ["Endpoint", "Mesh", "water_marks"]

log = logging.getLogger(__name__)



def water_marks(link: LinkProfile) -> tuple[int, int]:
    """(low, high) bytes in flight on a link, per connection direction.

    Reading resumes at ``low``, which must cover the bytes still propagating (the
    bandwidth-delay product) plus a few read chunks (up to 256 kB each) waiting to
    be serialised: resuming any later leaves the link idle for a moment, and a bulk
    transfer then runs below the configured bandwidth.
    """
    if math.isinf(link.bandwidth_mbps):
        return 64 * 2**20, 64 * 2**20   # nothing queues on an unlimited link
    bdp = int(link.bandwidth_mbps * 1e6 / 8 * link.latency_s)
    low = 2 * bdp + 2**20
    return low, low + 2**20



@dataclass
class Endpoint:
    pod: str
    workload: str
    port: int
    ready: bool = True     # False: crashed (the harness's watcher says so)
    serving: bool = True   # among its service's endpoints (a pod being added or removed is not)
    retired: bool = False  # gone for good: never serving again


class Mesh:
    """All nodes' proxies in one asyncio loop (they share nothing but the link model)."""

    def __init__(self, link: LinkProfile, endpoints: Mapping[str, Endpoint],
                 placement: Mapping[str, str], *, host: str = "127.0.0.1",
                 topology: Topology | None = None) -> None:
        self.host = host
        if topology is None:
            self.link = LinkModel(link)
            self.low_water, self.high_water = water_marks(link)
        else:
            # Links per pair of nodes; buffers sized for the largest bandwidth-delay
            # product among them, so no class runs below its configured rate.
            self.link = LinkModel(link, topology.link_table())
            self.low_water, self.high_water = max(
                (water_marks(p) for p in topology.profiles()), default=water_marks(link))
        self.endpoints = dict(endpoints)
        self.placement: dict[str, str] = {}
        self.set_placement(placement, complete=True)
        self.counters = TrafficCounters.empty()
        self.timers = PreciseScheduler(asyncio.get_running_loop())
        self._servers: list[asyncio.Server] = []
        self._egress: dict[str, list[asyncio.Server]] = {}   # source pod -> its listeners
        self._flows: set[_Flow] = set()
        self._rr: dict[str, Iterator[int]] = {}

    def workload_of(self, pod: str) -> str:
        return self.endpoints[pod].workload

    def set_placement(self, placement: Mapping[str, str], *, complete: bool = False) -> None:
        unknown = sorted(set(placement) - set(self.endpoints))
        if unknown:
            raise ValueError(f"placement names unknown pod(s): {', '.join(unknown)}")
        missing = sorted(set(self.endpoints) - set(placement) - set(self.placement))
        if complete and missing:
            raise ValueError(f"placement leaves pod(s) without a node: {', '.join(missing)}")
        self.placement.update(placement)

    def set_endpoint(self, pod: str, *, port: int | None = None, ready: bool | None = None,
                     serving: bool | None = None) -> None:
        ep = self.endpoints[pod]
        if serving and ep.retired:
            raise ValueError(f"pod {pod} is retired and cannot serve again")
        if port is not None:
            ep.port = port
        if ready is not None:
            ep.ready = ready
        if serving is not None:
            ep.serving = serving

    async def add_pod(self, pod: str, workload: str, node: str, port: int,
                      inputs: list[str], *, serving: bool = False) -> dict[str, int]:
        """A new pod on ``node`` with one egress listener per input service; returns
        {input service: listener port}. Not among its service's endpoints until
        ``serving`` (see :meth:`set_endpoint`)."""
        if pod in self.endpoints:
            raise ValueError(f"pod {pod} exists already (names are never reused)")
        self.endpoints[pod] = Endpoint(pod, workload, port, serving=serving)
        self.placement[pod] = node
        try:
            return {service: await self.open_listener(service, pod) for service in inputs}
        except BaseException:
            await self.retire(pod)
            raise

    async def retire(self, pod: str) -> list[int]:
        """Out of its service for good and its egress listeners closed (flows already
        open finish as they would); returns the closed listeners' ports."""
        ep = self.endpoints[pod]
        ep.serving, ep.retired = False, True
        closed = []
        for server in self._egress.pop(pod, []):
            closed.append(int(server.sockets[0].getsockname()[1]))
            server.close()
            self._servers.remove(server)
            await server.wait_closed()
        return closed

    def open_flows(self) -> dict[str, dict[str, int]]:
        """Per destination pod, the flows relayed to it: ``open`` (all) and ``connecting``
        (picked, the connection to the pod not made yet)."""
        out: dict[str, dict[str, int]] = {}
        for flow in self._flows:
            if flow.dst_pod:
                counts = out.setdefault(flow.dst_pod, {"open": 0, "connecting": 0})
                counts["open"] += 1
                counts["connecting"] += flow.server is None
        return out

    def degrade(self, node: str, latency_ms: float | None = None,
                bandwidth_mbps: float | None = None) -> None:
        """Every link touching ``node`` changes from the next chunk on; buffers grow if
        the new links' bandwidth-delay product needs more."""
        self.link.degrade(node, latency_ms, bandwidth_mbps)
        others = {n for n in self.placement.values() if n != node}
        for other in others:
            for a, b in ((node, other), (other, node)):
                low, high = water_marks(self.link.pair_profile(a, b))
                self.low_water, self.high_water = (max(self.low_water, low),
                                                   max(self.high_water, high))

    def pick(self, service: str) -> Endpoint | None:
        """Round robin over the service's ready pods (all of them if none is ready);
        None when no pod serves it (the caller's connection is then reset)."""
        pods = [ep for ep in self.endpoints.values() if ep.workload == service and ep.serving]
        if not pods:
            return None
        ready = [ep for ep in pods if ep.ready] or pods
        rr = self._rr.setdefault(service, itertools.count())
        return ready[next(rr) % len(ready)]

    async def open_listener(self, service: str, src_pod: str = "", *, port: int = 0) -> int:
        """Listen for connections to ``service`` from ``src_pod`` ("" = ingress) on
        ``port`` (0: any free one); returns the port."""
        if src_pod and src_pod not in self.endpoints:
            raise ValueError(f"unknown source pod {src_pod!r}")
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _ClientSide(self, src_pod, service),
                                          self.host, port)
        self._servers.append(server)
        if src_pod:
            self._egress.setdefault(src_pod, []).append(server)
        bound: int = server.sockets[0].getsockname()[1]
        return bound

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for flow in list(self._flows):
            flow.abort()
        for server in self._servers:
            await server.wait_closed()
        self.timers.close()


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Direction:
    """One direction of a relayed connection: bytes from ``reader`` to ``writer``."""

    __slots__ = ("closing", "counts", "eof_written", "flow", "inflight", "last", "link_paused",
                 "reader", "reading_paused", "request", "write_paused", "writer")

    def __init__(self, flow: _Flow, *, request: bool) -> None:
        self.flow = flow
        self.request = request
        self.counts = (flow.mesh.counters.request_bytes if request
                       else flow.mesh.counters.response_bytes)
        self.reader: asyncio.Transport | None = None
        self.writer: asyncio.Transport | None = None
        self.inflight = 0
        self.last = 0.0
        self.link_paused = self.write_paused = self.reading_paused = False
        self.closing = ""   # "", "eof" or "close": what to do once in-flight bytes land
        # After write_eof() a transport refuses write() with RuntimeError while
        # is_closing() is still False: bytes that arrive then are dropped, not written.
        self.eof_written = False

    def send(self, data: bytes) -> None:
        flow = self.flow
        mesh = flow.mesh
        n = len(data)
        dst_node = mesh.placement[flow.dst_pod]
        src_node = mesh.placement[flow.src_pod] if flow.src_pod else dst_node
        self.counts[(flow.src_pod, flow.dst_pod, src_node if flow.src_pod else "", dst_node)] += n
        now = time.monotonic()
        if src_node == dst_node:
            if not self.inflight:
                # The hot path of intra-node traffic: no timer, no copy.
                if not self.eof_written:
                    self.writer.write(data)  # type: ignore[union-attr]
                return
            when = max(now, self.last)   # keep order behind bytes still on a link
        else:
            a, b = (src_node, dst_node) if self.request else (dst_node, src_node)
            when = max(mesh.link.schedule(a, b, n, now), self.last)
        self.last = when
        self.inflight += n
        mesh.timers.call_at(when, self._deliver, data)
        if self.inflight > mesh.high_water and not self.link_paused:
            self.link_paused = True
            self._update_reading()

    def _deliver(self, data: bytes) -> None:
        self.inflight -= len(data)
        writer = self.writer
        if writer is not None and not writer.is_closing() and not self.eof_written:
            writer.write(data)
        if self.link_paused and self.inflight <= self.flow.mesh.low_water:
            self.link_paused = False
            self._update_reading()
        if self.closing and not self.inflight:
            self._finish_now()

    def set_write_paused(self, paused: bool) -> None:
        self.write_paused = paused
        self._update_reading()

    def _update_reading(self) -> None:
        want = self.link_paused or self.write_paused
        reader = self.reader
        if reader is None or want == self.reading_paused or reader.is_closing():
            return
        self.reading_paused = want
        if want:
            reader.pause_reading()
        else:
            reader.resume_reading()

    def finish(self, how: str) -> None:
        """The source sent EOF ("eof") or went away ("close"): pass it on after the data."""
        if self.closing == "close":
            return
        self.closing = how
        if not self.inflight and self.writer is not None:
            self._finish_now()

    def _finish_now(self) -> None:
        writer = self.writer
        if writer is None or writer.is_closing():
            return
        if self.closing == "eof" and writer.can_write_eof():
            if not self.eof_written:
                self.eof_written = True
                writer.write_eof()
            self.flow.close_if_done()
        else:
            writer.close()


class _Flow:
    """One relayed connection: the caller's (client) side and the pod's (server) side."""

    def __init__(self, mesh: Mesh, src_pod: str, client: asyncio.Transport) -> None:
        self.mesh = mesh
        self.src_pod = src_pod
        self.dst_pod = ""
        self.client = client
        self.server: asyncio.Transport | None = None
        self.up = _Direction(self, request=True)
        self.down = _Direction(self, request=False)
        self.up.reader = self.down.writer = client
        self.pending: list[bytes] = []   # caller bytes that came before the pod connection
        self.relaying = False
        self.client_gone = False
        mesh._flows.add(self)

    async def connect(self, ep: Endpoint) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_connection(lambda: _ServerSide(self), self.mesh.host,
                                                        ep.port)
        except OSError as exc:
            # Like ztunnel: the caller's connection was accepted, so the only way to
            # report "no endpoint" is to reset it; the caller sees a connection error.
            log.info("mesh: %s -> %s (port %d): %s", self.src_pod or "ingress", ep.pod, ep.port,
                     exc)
            self.client.abort()
            self._forget()
            return
        if self.client_gone:
            transport.close()
            return
        self.mesh.counters.opened[(self.src_pod, self.dst_pod)] += 1
        for data in self.pending:
            self.up.send(data)
        self.pending.clear()
        self.relaying = True
        if self.up.closing and not self.up.inflight:
            self.up._finish_now()   # the caller sent EOF before the pod answered the connect

    def server_made(self, transport: asyncio.Transport) -> None:
        _nodelay(transport)
        self.server = transport
        self.up.writer = self.down.reader = transport

    def close_if_done(self) -> None:
        """Both sides sent EOF and it was passed on: the connection is over (a socket
        half-closed both ways stays open until someone closes it)."""
        up, down = self.up, self.down
        if up.closing and down.closing and not up.inflight and not down.inflight:
            self.client.close()
            if self.server is not None:
                self.server.close()

    def abort(self) -> None:
        self.client.abort()
        if self.server is not None:
            self.server.abort()
        self._forget()

    def _forget(self) -> None:
        if self in self.mesh._flows:
            self.mesh._flows.discard(self)
            if self.server is not None:
                self.mesh.counters.closed[(self.src_pod, self.dst_pod)] += 1


class _ClientSide(asyncio.Protocol):
    def __init__(self, mesh: Mesh, src_pod: str, service: str) -> None:
        self.mesh = mesh
        self.src_pod = src_pod
        self.service = service
        self.flow: _Flow | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only look-alikes.
        transport = cast(asyncio.Transport, transport)
        _nodelay(transport)
        flow = self.flow = _Flow(self.mesh, self.src_pod, transport)
        ep = self.mesh.pick(self.service)
        if ep is None:
            transport.abort()
            flow._forget()
            return
        flow.dst_pod = ep.pod
        asyncio.get_running_loop().create_task(flow.connect(ep))

    def data_received(self, data: bytes) -> None:
        flow = self.flow
        assert flow is not None
        if not flow.relaying:
            flow.pending.append(data)
        else:
            flow.up.send(data)

    def eof_received(self) -> bool:
        assert self.flow is not None
        self.flow.up.finish("eof")
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        flow = self.flow
        assert flow is not None
        flow.client_gone = True
        flow.up.finish("close")
        if flow.server is None or flow.server.is_closing():
            flow._forget()

    def pause_writing(self) -> None:
        assert self.flow is not None
        self.flow.down.set_write_paused(True)

    def resume_writing(self) -> None:
        assert self.flow is not None
        self.flow.down.set_write_paused(False)


class _ServerSide(asyncio.Protocol):
    def __init__(self, flow: _Flow) -> None:
        self.flow = flow

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.flow.server_made(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        self.flow.down.send(data)

    def eof_received(self) -> bool:
        self.flow.down.finish("eof")
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.flow.down.finish("close")
        if self.flow.client_gone:
            self.flow._forget()

    def pause_writing(self) -> None:
        self.flow.up.set_write_paused(True)

    def resume_writing(self) -> None:
        self.flow.up.set_write_paused(False)
