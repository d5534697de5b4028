"""Link profiles: the per-node links an experiment's emulated cluster is given.

A profile is part of an experiment's recorded description (the config names a
preset, the manifest records the profile it stood for), so the data lives here,
below both the emulated cluster that applies it (``harness.backends.local``, whose
``LinkModel`` does the arithmetic) and the analysis that reports it. Pure data, no
dependencies: the mesh daemon imports it at startup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LINK_PRESETS", "LinkProfile", "resolve_link"]


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
# this project's 2-core machine, quiet, with node capacity on (--node-cpu 4);
# docs/emulated-cluster.md has the measurement. Until 2026-12-02 it was 2.5 ms /
# 300 Mbit/s, calibrated without capacity on a loaded machine (HTTP overshot by ~17
# points on a quiet one).
LINK_PRESETS: dict[str, LinkProfile] = {
    "lan": LinkProfile(latency_ms=0.1, bandwidth_mbps=1000.0),
    "edge": LinkProfile(latency_ms=1.5, bandwidth_mbps=300.0),
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
