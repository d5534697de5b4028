"""The ``local`` backend: the Python scheduler models place, the emulated cluster measures.

Public surface: `open_local(economy, LocalOptions(nodes, link))` (its placer and data
planes; ``harness.backends.open_backend("local", ...)`` composes the backend), and
`ModelPlacer` (the models as a placer, also for tools that only place).
"""

from harness.backends.local.backend import LocalOptions, open_local
from harness.backends.local.placer import ModelPlacer

__all__ = ["LocalOptions", "ModelPlacer", "open_local"]
