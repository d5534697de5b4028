"""The one error type of the local backend (bad arguments raise ValueError instead)."""

from __future__ import annotations

__all__ = ["ClusterError"]


class ClusterError(RuntimeError):
    """The cluster (a pod, the mesh or Prometheus) could not start; the message says why."""
