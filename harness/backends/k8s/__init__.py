"""The Kubernetes toolkit the kwok and kubernetes backends share: real Kubernetes
binaries, a kwok control plane with fake nodes, scheduler processes, workloads and the
placements read back from them.

Public surface:

- `binaries()` / `K8sBinaries` / `K8sBinariesMissing`: the binaries `tools/k8s/build` made;
- `KwokCluster`: start/attach/stop a kwokctl binary-runtime cluster with N kwok nodes;
- `ExtraScheduler`, `extender_stanza`, `scheduler_config`: a second real kube-scheduler
  (e.g. ``netmarks-scheduler`` calling the NetMARKS extender);
- `collect_placements`: deploy an economy repeatedly and read back where pods landed;
- `host_schedulers`: a policy's real counterpart (NetMARKS: extender + kube-scheduler;
  firmament; a user's extender by URL or program) as processes on this machine while
  a placement phase runs (`hostsched`);
- `counterpart`, `require_counterpart`, `scheduler_names`, `chart_scheduler_name`,
  `chart_keys`: which real scheduler stands for a policy, from the policy table
  (`counterparts`);
- `sigterm_as_interrupt`: unwind on SIGTERM like on Ctrl-C (`signals`).
"""

from harness.backends.k8s.binaries import K8sBinaries, K8sBinariesMissing, bin_dir, binaries
from harness.backends.k8s.cluster import KwokCluster, KwokError, default_workdir
from harness.backends.k8s.counterparts import (
    chart_keys,
    chart_scheduler_name,
    counterpart,
    require_counterpart,
    scheduler_names,
)
from harness.backends.k8s.hostsched import host_schedulers, pinned_kubeconfig
from harness.backends.k8s.nodes import NodeSpec
from harness.backends.k8s.placements import PlacementRound, collect_placements, collect_rounds
from harness.backends.k8s.scheduler import (
    ExtraScheduler,
    extender_stanza,
    scheduler_config,
)
from harness.backends.k8s.signals import sigterm_as_interrupt

__all__ = [
    "ExtraScheduler",
    "K8sBinaries",
    "K8sBinariesMissing",
    "KwokCluster",
    "KwokError",
    "NodeSpec",
    "PlacementRound",
    "bin_dir",
    "binaries",
    "chart_keys",
    "chart_scheduler_name",
    "collect_placements",
    "collect_rounds",
    "counterpart",
    "default_workdir",
    "extender_stanza",
    "host_schedulers",
    "pinned_kubeconfig",
    "require_counterpart",
    "scheduler_config",
    "scheduler_names",
    "sigterm_as_interrupt",
]
