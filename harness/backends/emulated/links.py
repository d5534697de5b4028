"""The link model: how long bytes take between two emulated nodes.

Every node has one uplink and one downlink of ``bandwidth_mbps`` each, joined by a
path with ``latency_ms`` one-way delay. A chunk of n bytes from node A to node B is
serialised on A's uplink (FIFO behind whatever A is already sending), propagates
for the latency, and leaves B's downlink no earlier than B's previous chunk plus
n/bandwidth. So flows that share a node's uplink (or downlink) share its bandwidth,
and a lone flow gets exactly ``latency + n / bandwidth`` - which is what the
benchmark checks. The model is pure arithmetic on timestamps (no sleeping), so it
is unit-tested without sockets; the mesh turns the delivery time into a timer.

:meth:`LinkModel.degrade` changes every link touching a node from then on (a
scenario's "degrade" event); later changes win over earlier ones on a pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from results.links import LinkProfile

__all__ = ["LinkModel"]


class LinkModel:
    """Delivery times for chunks crossing between nodes, with shared up/downlinks."""

    def __init__(self, profile: LinkProfile,
                 pair: Callable[[str, str], LinkProfile] | None = None) -> None:
        """``profile`` for every pair, or ``pair(src, dst)`` per pair when given."""
        self.profile = profile
        self._spb = profile.seconds_per_byte
        self._latency = profile.latency_s
        self._pair = pair
        self._per_pair: dict[tuple[str, str], tuple[float, float]] = {}
        # (node, latency_ms or None, bandwidth_mbps or None), oldest first: a pair's link
        # is its base profile with the changes touching either end applied in order.
        self._changes: list[tuple[str, float | None, float | None]] = []
        self._up_free: dict[str, float] = {}    # node -> time its uplink is idle again
        self._down_free: dict[str, float] = {}  # node -> time its downlink is idle again

    def schedule(self, src: str, dst: str, nbytes: int, now: float) -> float:
        """When the last byte of a chunk sent at ``now`` from ``src`` arrives at ``dst``."""
        if self._pair is None and not self._changes:
            spb, latency = self._spb, self._latency
        else:
            try:
                spb, latency = self._per_pair[(src, dst)]
            except KeyError:
                p = self.pair_profile(src, dst)
                spb, latency = self._per_pair[(src, dst)] = (p.seconds_per_byte, p.latency_s)
        tx = nbytes * spb
        sent = max(now, self._up_free.get(src, 0.0)) + tx
        self._up_free[src] = sent
        # Cut-through at equal rates: the downlink adds nothing for a lone flow, but a
        # busy downlink (another sender into dst) queues this chunk behind its backlog.
        arrived = max(sent + latency, self._down_free.get(dst, 0.0) + tx)
        self._down_free[dst] = arrived
        return arrived

    def pair_profile(self, src: str, dst: str) -> LinkProfile:
        """The link from ``src`` to ``dst`` as it is now (distinct nodes)."""
        p = self.profile if self._pair is None else self._pair(src, dst)
        for node, latency_ms, bandwidth_mbps in self._changes:
            if node in (src, dst):
                p = replace(p, latency_ms=p.latency_ms if latency_ms is None else latency_ms,
                            bandwidth_mbps=(p.bandwidth_mbps if bandwidth_mbps is None
                                            else bandwidth_mbps))
        return p

    def degrade(self, node: str, latency_ms: float | None = None,
                bandwidth_mbps: float | None = None) -> None:
        """Every link touching ``node`` gets this latency and/or bandwidth (None: keep
        what it has) for the chunks scheduled from now on."""
        # Validated here, so a bad value is refused before it reaches the hot path.
        LinkProfile(0.0 if latency_ms is None else latency_ms,
                    1.0 if bandwidth_mbps is None else bandwidth_mbps)
        self._changes.append((node, latency_ms, bandwidth_mbps))
        self._per_pair.clear()
