"""The local backend: the Python scheduler models place, the emulated cluster measures.

The data plane is the emulated cluster (``harness.backends.emulated``: real producer
processes behind an emulated mesh), relaid out for every layout measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends.emulated.planes import EmulatedPlanes
from harness.backends.local.placer import ModelPlacer
from results.topology import Topology, resolve_topology
from settlers.economy import Economy

__all__ = ["LocalOptions", "open_local"]


@dataclass(frozen=True)
class LocalOptions:
    nodes: int = 5
    link: str = "edge"  # link preset of the emulated cluster
    # Where the emulated cluster keeps logs (None: a scratch directory of its own).
    run_dir: Path | None = None
    # Nodes, labels and links per pair (None: `nodes` identical nodes behind `link`).
    topology: Topology | None = None
    # Node CPU capacity (millicores) for the models and, enforced, the emulated cluster,
    # where the topology gives none; None: the models' default, nothing enforced.
    node_cpu_m: int | None = None
    cpu_scale: float | None = None
    # Policy -> options of its model (`scheduler_options`; netmarks: weight, ...).
    scheduler_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def open_local(economy: Economy, options: LocalOptions) -> tuple[ModelPlacer, EmulatedPlanes]:
    """The two halves (the registry adds the description: `open_backend("local", ...)`)."""
    # Network-aware models see the links the emulated cluster will apply.
    network = (options.topology or resolve_topology(None, nodes=options.nodes,
                                                     link=options.link)).network()
    return (ModelPlacer(economy, options.nodes, options.topology, options.node_cpu_m,
                        options.scheduler_options, network=network),
            EmulatedPlanes(economy, options.nodes, options.link, options.run_dir,
                           options.topology, node_cpu_m=options.node_cpu_m,
                           cpu_scale=options.cpu_scale))
