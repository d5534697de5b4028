"""The `kubernetes` backend: the testbed in a real cluster, installed by its Helm chart.

Public surface:

- `open_kubernetes(economy, KubernetesOptions(...))`: its placer and data planes on
  one release (``harness.backends.open_backend("kubernetes", ...)`` composes the
  backend; `harness run` builds the options with `options_for(config)`);
- `KubernetesPlacer`: placement under the cluster's schedulers;
- `KubernetesPlanes` / `KubernetesDataPlane`: one layout pinned to its nodes;
  ``run_sweep`` runs the order app in the cluster as a Job; bytes from Istio's
  counters (`meshbytes`);
- `Release`: the Helm release both halves share (lock, phase values, cleanup);
- `Helm`, `find_helm`, `CHART_DIR`: the helm CLI and the chart (also for tests);
- `PhaseValues`, `pins_by_item`: the chart values the harness sets per phase (the
  schedulerName and chart component of each policy come from the policy table,
  ``harness.backends.k8s.counterparts``).
"""

from harness.backends.kubernetes.backend import KubernetesPlanes, open_kubernetes
from harness.backends.kubernetes.cluster import ClusterError, KubeCluster
from harness.backends.kubernetes.dataplane import KubernetesDataPlane
from harness.backends.kubernetes.helm import CHART_DIR, Helm, HelmError, HelmNotFound, find_helm
from harness.backends.kubernetes.options import KubernetesOptions, options_for
from harness.backends.kubernetes.orders import OrderJobError, parse_job_log
from harness.backends.kubernetes.placer import KubernetesPlacer
from harness.backends.kubernetes.release import SWEEP_LABEL, Release
from harness.backends.kubernetes.values import PhaseValues, pins_by_item

__all__ = [
    "CHART_DIR",
    "SWEEP_LABEL",
    "ClusterError",
    "Helm",
    "HelmError",
    "HelmNotFound",
    "KubeCluster",
    "KubernetesDataPlane",
    "KubernetesOptions",
    "KubernetesPlacer",
    "KubernetesPlanes",
    "OrderJobError",
    "PhaseValues",
    "Release",
    "find_helm",
    "open_kubernetes",
    "options_for",
    "parse_job_log",
    "pins_by_item",
]
