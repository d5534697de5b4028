"""The `kubernetes` backend: the testbed in a real cluster, installed by its Helm chart.

Public surface:

- `open_kubernetes_backend(config)`: what `harness run --backend kubernetes` opens;
- `KubernetesBackend(economy, KubernetesOptions(...))`: the harness Backend
  (placement under the cluster's schedulers, measurement with pinned layouts);
- `KubernetesDataPlane`: one layout pinned to its nodes; ``run_sweep`` runs the
  order app in the cluster as a Job; bytes from Istio's counters (`meshbytes`);
- `Helm`, `find_helm`, `CHART_DIR`: the helm CLI and the chart (also for tests);
- `PhaseValues`, `pins_by_item`: the chart values the harness sets per phase.
"""

from harness.backends.kubernetes.backend import (
    KubernetesBackend,
    KubernetesOptions,
    open_kubernetes_backend,
)
from harness.backends.kubernetes.cluster import ClusterError, KubeCluster
from harness.backends.kubernetes.dataplane import KubernetesDataPlane
from harness.backends.kubernetes.helm import CHART_DIR, Helm, HelmError, HelmNotFound, find_helm
from harness.backends.kubernetes.orders import OrderJobError, parse_job_log
from harness.backends.kubernetes.values import DEFAULT_SCHEDULER_NAMES, PhaseValues, pins_by_item

__all__ = [
    "CHART_DIR",
    "DEFAULT_SCHEDULER_NAMES",
    "ClusterError",
    "Helm",
    "HelmError",
    "HelmNotFound",
    "KubeCluster",
    "KubernetesBackend",
    "KubernetesDataPlane",
    "KubernetesOptions",
    "OrderJobError",
    "PhaseValues",
    "find_helm",
    "open_kubernetes_backend",
    "parse_job_log",
    "pins_by_item",
]
