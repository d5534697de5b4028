"""The emulated cluster: a multi-node cluster on this machine, the data plane of the
local and kwok backends (and of the kubernetes backend on kwok's fake nodes).

Pods are real ``settlers serve`` processes; all pod-to-pod traffic crosses an
emulated, ztunnel-shaped mesh with per-node links (latency + shared bandwidth)
and Istio-named metrics, optionally scraped by a real Prometheus. See
docs/emulated-cluster.md.
"""

from harness.backends.emulated.cluster import ClusterError, ClusterSpec, EmulatedCluster
from harness.backends.emulated.planes import EmulatedPlanes
from harness.backends.emulated.pods import PodInfo

__all__ = ["ClusterError", "ClusterSpec", "EmulatedCluster", "EmulatedPlanes", "PodInfo"]
