"""The kwok backend's control plane: real Kubernetes binaries, fake (kwok) nodes.

Public surface:

- `binaries()` / `K8sBinaries` / `K8sBinariesMissing`: the binaries `tools/k8s/build` made;
- `KwokCluster`: start/attach/stop a kwokctl binary-runtime cluster with N kwok nodes;
- `ExtraScheduler`, `extender_stanza`, `scheduler_config`: a second real kube-scheduler
  (e.g. ``netmarks-scheduler`` calling the NetMARKS extender);
- `collect_placements`: deploy an economy repeatedly and read back where pods landed.
"""

from harness.backends.kwok.binaries import K8sBinaries, K8sBinariesMissing, bin_dir, binaries
from harness.backends.kwok.cluster import KwokCluster, KwokError, default_workdir
from harness.backends.kwok.nodes import NodeSpec
from harness.backends.kwok.placements import PlacementRound, collect_placements, collect_rounds
from harness.backends.kwok.scheduler import (
    NETMARKS_SCHEDULER,
    ExtraScheduler,
    extender_stanza,
    scheduler_config,
)

__all__ = [
    "NETMARKS_SCHEDULER",
    "ExtraScheduler",
    "K8sBinaries",
    "K8sBinariesMissing",
    "KwokCluster",
    "KwokError",
    "NodeSpec",
    "PlacementRound",
    "bin_dir",
    "binaries",
    "collect_placements",
    "collect_rounds",
    "default_workdir",
    "extender_stanza",
    "scheduler_config",
]
