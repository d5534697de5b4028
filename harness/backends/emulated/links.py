"""The link model: how long bytes take between two emulated nodes.

Every node has one uplink and one downlink of ``bandwidth_mbps`` each, joined by a
path with ``latency_ms`` one-way delay. A chunk of n bytes from node A to node B is
serialised on A's uplink (FIFO behind whatever A is already sending), propagates
for the latency, and leaves B's downlink no earlier than B's previous chunk plus
n/bandwidth. So flows that share a node's uplink (or downlink) share its bandwidth,
and a lone flow gets exactly ``latency + n / bandwidth`` - which is what the
benchmark checks. The model is pure arithmetic on timestamps (no sleeping), so it
is unit-tested without sockets; the mesh turns the delivery time into a timer.
"""

from __future__ import annotations

from collections.abc import Callable

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
        self._up_free: dict[str, float] = {}    # node -> time its uplink is idle again
        self._down_free: dict[str, float] = {}  # node -> time its downlink is idle again

    def schedule(self, src: str, dst: str, nbytes: int, now: float) -> float:
        """When the last byte of a chunk sent at ``now`` from ``src`` arrives at ``dst``."""
        if self._pair is None:
            spb, latency = self._spb, self._latency
        else:
            try:
                spb, latency = self._per_pair[(src, dst)]
            except KeyError:
                p = self._pair(src, dst)
                spb, latency = self._per_pair[(src, dst)] = (p.seconds_per_byte, p.latency_s)
        tx = nbytes * spb
        sent = max(now, self._up_free.get(src, 0.0)) + tx
        self._up_free[src] = sent
        # Cut-through at equal rates: the downlink adds nothing for a lone flow, but a
        # busy downlink (another sender into dst) queues this chunk behind its backlog.
        arrived = max(sent + latency, self._down_free.get(dst, 0.0) + tx)
        self._down_free[dst] = arrived
        return arrived
