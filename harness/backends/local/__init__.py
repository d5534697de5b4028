"""The ``local`` backend: an emulated multi-node cluster on this machine.

Pods are real ``settlers serve`` processes; all pod-to-pod traffic crosses an
emulated, ztunnel-shaped mesh with per-node links (latency + shared bandwidth)
and Istio-named metrics, optionally scraped by a real Prometheus. See
docs/emulated-cluster.md.
"""

from harness.backends.local.cluster import ClusterError, ClusterSpec, EmulatedCluster
from harness.backends.local.links import LINK_PRESETS, LinkProfile, resolve_link
from harness.backends.local.pods import PodInfo

__all__ = ["LINK_PRESETS", "ClusterError", "ClusterSpec", "EmulatedCluster", "LinkProfile",
           "PodInfo", "resolve_link"]
