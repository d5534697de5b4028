"""The ``kwok`` backend: the real kube-scheduler (with the NetMARKS extender, or firmament,
or a scheduler of the user's) places on a kwok control plane; the emulated cluster
measures.

Public surface: `open_kwok(economy, KwokOptions(...))` (placer and data planes) and
`KwokPlacer`. Which real scheduler stands for a policy comes from the policy table
(``harness.backends.k8s.counterparts``); the Kubernetes pieces it runs on are the
shared toolkit ``harness.backends.k8s``.
"""

from harness.backends.kwok.backend import KwokOptions, open_kwok
from harness.backends.kwok.placer import KwokPlacer

__all__ = ["KwokOptions", "KwokPlacer", "open_kwok"]
