"""The ``kwok`` backend: the real kube-scheduler (with the NetMARKS extender, or firmament)
places on a kwok control plane; the emulated cluster measures.

Public surface: `open_kwok(economy, KwokOptions(...))` (placer and data planes), `KwokPlacer`,
and `KWOK_SCHEDULERS` (policy -> the schedulerName pods carry on the control plane).
The Kubernetes pieces it runs on are the shared toolkit ``harness.backends.k8s``.
"""

from harness.backends.kwok.backend import KwokOptions, open_kwok
from harness.backends.kwok.placer import KWOK_SCHEDULERS, KwokPlacer

__all__ = ["KWOK_SCHEDULERS", "KwokOptions", "KwokPlacer", "open_kwok"]
