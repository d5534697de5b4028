"""The backends an experiment runs on, each a placer plus a data plane plus a description.

- ``local``: the Python scheduler models place, the emulated cluster measures;
- ``kwok``: the real kube-scheduler places on a kwok control plane, the emulated
  cluster measures;
- ``kubernetes``: a real cluster's schedulers place, the cluster measures (Job +
  Prometheus), or the emulated cluster when its nodes are kwok's fakes.

Shared parts: ``emulated`` (the emulated cluster), ``k8s`` (the Kubernetes toolkit of
the kwok and kubernetes backends). Public surface: the registry table `BACKENDS`,
`open_backend(name, economy, options)`, `backend_for(config)`, `describe(name)`, and
`Backend` / `BackendUnavailable` (``base`` has the Protocols). A backend's description
is a `results.manifest.BackendDescription`: the results record it.
"""

from harness.backends.base import Backend, BackendUnavailable
from harness.backends.registry import BACKENDS, backend_for, describe, open_backend

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendUnavailable",
    "backend_for",
    "describe",
    "open_backend",
]
