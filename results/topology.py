"""Topologies: which nodes an experiment has, their labels and capacities, and the link
between every pair of them.

Today's emulated cluster gives every pair of nodes the same link (``results.links``).
A topology instead sorts each pair into a *pair class* and gives each class its own
:class:`~results.links.LinkProfile`:

- ``same-node``: always local (no link, as today);
- ``same-zone``: both nodes have the same ``topology.kubernetes.io/region`` and
  ``topology.kubernetes.io/zone`` labels (absent counts as a value, so unlabelled nodes
  are all in one zone);
- ``cross-zone``: same region, different zone;
- ``cross-region``: different region.

Links depend on the pair class only, so two nodes with the same labels and capacity
have the same links to everyone: that is why canonical layouts can still treat such
nodes (and only those) as interchangeable by comparing labels and capacity.

A topology is part of an experiment's recorded description (the config embeds it,
the manifest records the config), so it lives here beside the link profiles; the
emulated cluster applies it and the scheduler models read its nodes' labels. Presets
(:data:`TOPOLOGY_PRESETS`) are built for a node count and a link preset: ``uniform``
is exactly today's cluster. File format: see ``docs/emulated-cluster.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from results._validation import joined
from results._yaml import read_mapping
from results.links import LINK_PRESETS, LinkProfile, resolve_link

if TYPE_CHECKING:
    from schedulers.model import Node
    from schedulers.network import NodeNetwork

__all__ = [
    "PAIR_CLASSES",
    "REGION_LABEL",
    "TOPOLOGY_PRESETS",
    "ZONE_LABEL",
    "LinkSpec",
    "PairClass",
    "Topology",
    "TopologyError",
    "TopologyNode",
    "load_topology",
    "resolve_topology",
]

ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"

PairClass = Literal["same-zone", "cross-zone", "cross-region"]
PAIR_CLASSES: tuple[PairClass, ...] = ("same-zone", "cross-zone", "cross-region")

# RFC 1123 subdomain, as Kubernetes node names are.
_NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_CPU = re.compile(r"^[0-9]+(\.[0-9]+)?m?$")


class TopologyError(ValueError):
    """A topology file or preset is invalid; the message says what and where."""


class LinkSpec(BaseModel):
    """One pair class's link: one-way latency and bandwidth (null = unlimited).

    In a file, a link preset's name (``lan``, ``edge``, ``wan``) stands for its values.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(ge=0, allow_inf_nan=False, description="one-way latency, ms")
    bandwidth_mbps: float | None = Field(
        default=None, gt=0, allow_inf_nan=False,
        description="per-node up/downlink rate for this class, Mbit/s (null: unlimited)")

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data not in LINK_PRESETS:
                raise ValueError(f"unknown link preset {data!r}; known: {', '.join(LINK_PRESETS)}")
            return cls.of(LINK_PRESETS[data]).model_dump()
        return data

    @classmethod
    def of(cls, profile: LinkProfile) -> LinkSpec:
        bw = None if math.isinf(profile.bandwidth_mbps) else profile.bandwidth_mbps
        return cls(latency_ms=profile.latency_ms, bandwidth_mbps=bw)

    def profile(self) -> LinkProfile:
        return LinkProfile(self.latency_ms,
                           math.inf if self.bandwidth_mbps is None else self.bandwidth_mbps)


class TopologyNode(BaseModel):
    """A node: its name, labels (zone, region, anything) and optional CPU capacity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    cpu: str | None = Field(default=None, description="allocatable CPU (e.g. 4 or 2500m); "
                                              "null: the run's node size")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NODE_NAME.match(value) or len(value) > 253:
            raise ValueError(f"invalid node name {value!r}: use lower-case letters, digits, "
                             "'-' and '.' (a Kubernetes node name)")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not key or key.count("/") > 1:
                raise ValueError(f"invalid label key {key!r}: expected [prefix/]name")
        return value

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: str | None) -> str | None:
        if value is not None and (not _CPU.match(value) or float(value.rstrip("m")) <= 0):
            raise ValueError(f"invalid CPU quantity {value!r} (expected e.g. 4, 0.5 or 2500m)")
        return value

    @property
    def zone(self) -> tuple[str | None, str | None]:
        return self.labels.get(REGION_LABEL), self.labels.get(ZONE_LABEL)


class Topology(BaseModel):
    """Nodes and the link of every pair class among them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("custom", description="a preset's name, or what the file calls itself")
    nodes: list[TopologyNode] = Field(min_length=1)
    links: dict[PairClass, LinkSpec] = Field(
        description="link per pair class: same-zone, cross-zone, cross-region")

    @model_validator(mode="after")
    def _consistent(self) -> Topology:
        names = [n.name for n in self.nodes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"node name(s) listed twice: {', '.join(dupes)}")
        needed: dict[PairClass, tuple[str, str]] = {}
        for i, a in enumerate(self.nodes):
            for b in self.nodes[i + 1:]:
                needed.setdefault(_pair_class(a, b), (a.name, b.name))
        missing = [f"{c} (e.g. {x} - {y})" for c, (x, y) in needed.items() if c not in self.links]
        if missing:
            raise ValueError(f"no link given for pair class(es) {'; '.join(missing)}")
        return self

    # -- queries --------------------------------------------------------------------

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def node(self, name: str) -> TopologyNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r} in topology {self.name!r}")

    def pair_class(self, a: str, b: str) -> PairClass | None:
        """The class of a pair of node names; None for a node with itself (local)."""
        return None if a == b else _pair_class(self.node(a), self.node(b))

    def link(self, a: str, b: str) -> LinkProfile | None:
        """The link between two nodes; None when they are the same node."""
        cls = self.pair_class(a, b)
        return None if cls is None else self.links[cls].profile()

    def link_table(self) -> Callable[[str, str], LinkProfile]:
        """A fast ``(src, dst) -> LinkProfile`` for the mesh's hot path (distinct nodes)."""
        profiles = {c: spec.profile() for c, spec in self.links.items()}
        by_name = {n.name: n for n in self.nodes}
        cache: dict[tuple[str, str], LinkProfile] = {}

        def lookup(a: str, b: str) -> LinkProfile:
            try:
                return cache[(a, b)]
            except KeyError:
                p = cache[(a, b)] = profiles[_pair_class(by_name[a], by_name[b])]
                return p

        return lookup

    def used_classes(self) -> list[PairClass]:
        """Pair classes that occur among the nodes, in :data:`PAIR_CLASSES` order."""
        seen = {_pair_class(a, b) for i, a in enumerate(self.nodes) for b in self.nodes[i + 1:]}
        return [c for c in PAIR_CLASSES if c in seen]

    def profiles(self) -> list[LinkProfile]:
        """The links that occur (for sizing the mesh's buffers by the largest)."""
        return [self.links[c].profile() for c in self.used_classes()]

    def model_nodes(self, cpu_m: int = 4000, memory: int = 8 * 2**30,
                    max_pods: int = 110) -> list[Node]:
        """The scheduler models' nodes: labels as given, CPU from the file or ``cpu_m``."""
        from schedulers.model import Node
        from settlers.quantity import parse_cpu

        return [Node(name=n.name, cpu_m=cpu_m if n.cpu is None else parse_cpu(n.cpu),
                     memory=memory, max_pods=max_pods, labels=dict(n.labels))
                for n in self.nodes]

    def network(self) -> NodeNetwork:
        """What network-aware policies are told about the links (``schedulers.network``):
        each pair's one-way latency and bandwidth (Mbit/s -> bytes/s; inf -> unlimited)."""
        from schedulers.network import NodeNetwork

        # link_table, not link(): that looks nodes up by a scan, N^3 for N^2 pairs
        # (86 s for 1000 nodes); a pair class's link is converted once.
        table = self.link_table()
        links: dict[tuple[float, float], Any] = {}

        def link(a: str, b: str) -> Any:
            p = table(a, b)
            key = (p.latency_ms, p.bandwidth_mbps)
            if key not in links:
                links[key] = _as_link(p)
            return links[key]

        return NodeNetwork.build(self.node_names, link, source=f"topology {self.name}")

    def describe(self) -> str:
        """One line for logs and the report."""
        zones = {n.zone for n in self.nodes}
        regions = {r for r, _ in zones}
        links = "; ".join(f"{c} {self.links[c].profile().describe()}"
                          for c in self.used_classes()) or "a single node, no links"
        return (f"{self.name}: {len(self.nodes)} node(s) in {len(zones)} zone(s), "
                f"{len(regions)} region(s); {links}")


def _as_link(profile: LinkProfile | None) -> Any:
    from schedulers.network import Link

    if profile is None:
        return Link(0.0)
    bandwidth = None if math.isinf(profile.bandwidth_mbps) else profile.bandwidth_mbps * 1e6 / 8
    return Link(profile.latency_ms, bandwidth)


def _pair_class(a: TopologyNode, b: TopologyNode) -> PairClass:
    (ra, za), (rb, zb) = a.zone, b.zone
    if ra != rb:
        return "cross-region"
    return "same-zone" if za == zb else "cross-zone"


# -- presets ------------------------------------------------------------------------

def _names(n: int) -> list[str]:
    # node-1 .. node-N, the names every backend already uses.
    if n < 1:
        raise TopologyError(f"a topology needs at least one node, got {n}")
    return [f"node-{i}" for i in range(1, n + 1)]


def _uniform(nodes: int, link: LinkProfile) -> Topology:
    """Today's cluster: N unlabelled nodes, one link for every pair."""
    return Topology(name="uniform", nodes=[TopologyNode(name=n) for n in _names(nodes)],
                    links={"same-zone": LinkSpec.of(link)})


def _zones(nodes: int, link: LinkProfile) -> Topology:
    """Three zones of one region, nodes dealt round robin (node-1 in zone-a, node-2 in
    zone-b, ...). Within a zone the ``lan`` link; across zones the run's link (by
    default the calibrated ``edge``), so the inter-node hop of today becomes the
    cross-zone hop and same-zone neighbours are cheap."""
    zones = ["zone-a", "zone-b", "zone-c"]
    return Topology(
        name="zones",
        nodes=[TopologyNode(name=n, labels={REGION_LABEL: "region-1",
                                            ZONE_LABEL: zones[i % len(zones)]})
               for i, n in enumerate(_names(nodes))],
        links={"same-zone": LinkSpec.of(LINK_PRESETS["lan"]), "cross-zone": LinkSpec.of(link)})


# Edge-cloud numbers are illustrative, not measured: an edge site of two small nodes
# (2 CPUs) on a LAN, and a cloud region whose zones are the run's link apart and that
# sits a WAN away from the edge (the `wan` preset: 10 ms one-way, 50 Mbit/s, the order
# of an access network plus a regional backbone). Chosen to make the regions' difference
# obvious, not to model any provider.
EDGE_NODES = 2
EDGE_CPU = "2"


def _edge_cloud(nodes: int, link: LinkProfile) -> Topology:
    """A small edge site (node-1, node-2) and a far cloud (node-3.., two zones)."""
    if nodes < EDGE_NODES + 1:
        raise TopologyError(f"the edge-cloud topology needs at least {EDGE_NODES + 1} nodes "
                            f"({EDGE_NODES} edge + 1 cloud), got {nodes}")
    names = _names(nodes)
    edge = [TopologyNode(name=n, cpu=EDGE_CPU,
                         labels={REGION_LABEL: "edge", ZONE_LABEL: "edge-1"})
            for n in names[:EDGE_NODES]]
    cloud_zones = ["cloud-a", "cloud-b"]
    cloud = [TopologyNode(name=n, labels={REGION_LABEL: "cloud",
                                          ZONE_LABEL: cloud_zones[i % len(cloud_zones)]})
             for i, n in enumerate(names[EDGE_NODES:])]
    return Topology(name="edge-cloud", nodes=edge + cloud, links={
        "same-zone": LinkSpec.of(LINK_PRESETS["lan"]),
        "cross-zone": LinkSpec.of(link),
        "cross-region": LinkSpec.of(LINK_PRESETS["wan"]),
    })


TOPOLOGY_PRESETS: Mapping[str, Callable[[int, LinkProfile], Topology]] = {
    "uniform": _uniform,
    "zones": _zones,
    "edge-cloud": _edge_cloud,
}


def load_topology(path: Path) -> Topology:
    """A topology file (YAML or JSON), checked; TopologyError names every problem."""
    data = read_mapping(path, "topology file", TopologyError,
                        "a topology file is a mapping with nodes: and links:")
    data.setdefault("name", path.stem)
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        raise TopologyError(f"{path}: {joined(exc)}") from None


def resolve_topology(spec: str | Path | Topology | Mapping[str, Any] | None, *, nodes: int = 5,
                     link: str | LinkProfile = "edge") -> Topology:
    """A preset name (built for ``nodes`` and ``link``), a file, or a topology as data.

    ``None`` is the ``uniform`` preset: today's cluster.
    """
    if isinstance(spec, Topology):
        return spec
    if isinstance(spec, Mapping):
        try:
            return Topology.model_validate(spec)
        except ValidationError as exc:
            raise TopologyError(f"topology: {joined(exc)}") from None
    name = "uniform" if spec is None else str(spec)
    if name in TOPOLOGY_PRESETS:
        try:
            return TOPOLOGY_PRESETS[name](nodes, resolve_link(link))
        except ValidationError as exc:
            raise TopologyError(f"topology {name}: {joined(exc)}") from None
    path = Path(name)
    if not path.exists():
        raise TopologyError(f"topology {name!r} is neither a preset "
                            f"({', '.join(TOPOLOGY_PRESETS)}) nor an existing file")
    return load_topology(path)
