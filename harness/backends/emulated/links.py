"""Link profiles and the link model: how long bytes take between two emulated nodes.

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

import math
from dataclasses import dataclass

__all__ = ["LINK_PRESETS", "LinkModel", "LinkProfile", "resolve_link"]


@dataclass(frozen=True)
class LinkProfile:
    """One-way latency (ms) and per-node up/downlink bandwidth (Mbit/s; inf = no limit)."""

    latency_ms: float
    bandwidth_mbps: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.latency_ms) and self.latency_ms >= 0):
            raise ValueError("link latency must be a finite number >= 0 ms, "
                             f"got {self.latency_ms!r}")
        if not (self.bandwidth_mbps > 0):
            raise ValueError(f"link bandwidth must be > 0 Mbit/s, got {self.bandwidth_mbps!r}")

    @property
    def latency_s(self) -> float:
        return self.latency_ms / 1000.0

    @property
    def seconds_per_byte(self) -> float:
        return 8.0 / (self.bandwidth_mbps * 1e6)

    def describe(self) -> str:
        bw = "unlimited" if math.isinf(self.bandwidth_mbps) else f"{self.bandwidth_mbps:g} Mbit/s"
        return f"{self.latency_ms:g} ms one-way, {bw}"


# "edge" is the default and is calibrated against the NetMARKS micro-benchmark
# (co-located vs split two-pod chain: -66 % HTTP, -69 % gRPC) with bench/link.py on
# this project's 2-core machine; docs/emulated-cluster.md has the measurement.
LINK_PRESETS: dict[str, LinkProfile] = {
    "lan": LinkProfile(latency_ms=0.1, bandwidth_mbps=1000.0),
    "edge": LinkProfile(latency_ms=2.5, bandwidth_mbps=300.0),
    "wan": LinkProfile(latency_ms=10.0, bandwidth_mbps=50.0),
}


def resolve_link(link: str | LinkProfile, *, latency_ms: float | None = None,
                 bandwidth_mbps: float | None = None) -> LinkProfile:
    """A preset name or profile, with optional explicit overrides of either value."""
    if isinstance(link, LinkProfile):
        base = link
    else:
        try:
            base = LINK_PRESETS[link]
        except KeyError:
            raise ValueError(f"unknown link preset {link!r}; "
                             f"choose one of {', '.join(LINK_PRESETS)}") from None
    return LinkProfile(
        latency_ms=base.latency_ms if latency_ms is None else latency_ms,
        bandwidth_mbps=base.bandwidth_mbps if bandwidth_mbps is None else bandwidth_mbps,
    )


class LinkModel:
    """Delivery times for chunks crossing between nodes, with shared up/downlinks."""

    def __init__(self, profile: LinkProfile) -> None:
        self.profile = profile
        self._spb = profile.seconds_per_byte
        self._latency = profile.latency_s
        self._up_free: dict[str, float] = {}    # node -> time its uplink is idle again
        self._down_free: dict[str, float] = {}  # node -> time its downlink is idle again

    def schedule(self, src: str, dst: str, nbytes: int, now: float) -> float:
        """When the last byte of a chunk sent at ``now`` from ``src`` arrives at ``dst``."""
        tx = nbytes * self._spb
        sent = max(now, self._up_free.get(src, 0.0)) + tx
        self._up_free[src] = sent
        # Cut-through at equal rates: the downlink adds nothing for a lone flow, but a
        # busy downlink (another sender into dst) queues this chunk behind its backlog.
        arrived = max(sent + self._latency, self._down_free.get(dst, 0.0) + tx)
        self._down_free[dst] = arrived
        return arrived
