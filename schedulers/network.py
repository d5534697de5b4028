"""What a network-aware policy knows about the links between nodes: delay and bandwidth.

NetMARKS and firmament see only traffic (who talks to whom); the field's newer
contenders also weigh *where* the nodes are. Diktyo reads static costs between zones
and regions (its NetworkTopology), TraDE multiplies traffic by the measured delay
between two nodes. Both need the same input, which this module gives them without
knowing where it came from: a :class:`NodeNetwork`, one-way delay (ms) and bandwidth
(bytes/s, ``None`` = unlimited) for every ordered pair of nodes.

The harness builds one from the experiment's topology (``results.topology``; its pair
classes: same zone, cross zone, cross region) and hands it to every policy whose
``PolicySpec.uses_network`` is set, as ``new(network=...)``. A policy given none sees
:meth:`NodeNetwork.flat`: every cross-node pair alike, which is what a uniform cluster
is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Link", "NodeNetwork"]


@dataclass(frozen=True, slots=True)
class Link:
    """One direction of the path between two nodes."""

    delay_ms: float
    bandwidth: float | None = None  # bytes/s; None = unlimited

    def __post_init__(self) -> None:
        if not (math.isfinite(self.delay_ms) and self.delay_ms >= 0):
            raise ValueError(f"link delay must be a finite number of ms >= 0, got {self.delay_ms}")
        if self.bandwidth is not None and not (math.isfinite(self.bandwidth)
                                               and self.bandwidth > 0):
            raise ValueError(f"link bandwidth must be > 0 bytes/s or None, got {self.bandwidth}")


_LOCAL = Link(0.0, None)


@dataclass(frozen=True)
class NodeNetwork:
    """Delay and bandwidth between named nodes; a node to itself is local (0 ms, unlimited).

    ``default`` answers for any pair not listed (and for node names never seen, so a
    policy can be handed nodes the network was not built for); ``None`` makes an
    unknown pair an error instead.
    """

    links: Mapping[tuple[str, str], Link] = field(default_factory=dict)
    default: Link | None = Link(0.0)
    # Where the numbers come from, for reports ("topology zones: lan / edge / wan").
    source: str = "flat"

    @classmethod
    def flat(cls, delay_ms: float = 0.0, bandwidth: float | None = None,
             source: str = "flat") -> NodeNetwork:
        """Every cross-node pair alike (a uniform cluster)."""
        return cls({}, Link(delay_ms, bandwidth), source)

    @classmethod
    def build(cls, nodes: Iterable[str], link: Callable[[str, str], Link],
              source: str) -> NodeNetwork:
        """``link(a, b)`` for every ordered pair of distinct ``nodes``."""
        names = list(nodes)
        return cls({(a, b): link(a, b) for a in names for b in names if a != b}, None, source)

    def link(self, a: str, b: str) -> Link:
        if a == b:
            return _LOCAL
        found = self.links.get((a, b), self.default)
        if found is None:
            raise KeyError(f"no link known between nodes {a!r} and {b!r} ({self.source})")
        return found

    def delay_ms(self, a: str, b: str) -> float:
        """One-way delay from ``a`` to ``b`` in ms (0 on the same node)."""
        return self.link(a, b).delay_ms

    def bandwidth(self, a: str, b: str) -> float | None:
        """Bandwidth from ``a`` to ``b`` in bytes/s; None = unlimited (or the same node)."""
        return self.link(a, b).bandwidth

    @property
    def is_flat(self) -> bool:
        """True when every cross-node pair has the same link (nothing to tell nodes apart)."""
        return len(set(self.links.values()) | ({self.default} - {None})) <= 1
