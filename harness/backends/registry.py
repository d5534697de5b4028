"""Pick the backend an experiment names; say clearly why one cannot run here."""

from __future__ import annotations

from harness.backends.base import Backend, BackendUnavailable
from harness.config import ExperimentConfig

__all__ = ["open_backend"]


def open_backend(config: ExperimentConfig) -> Backend:
    economy = config.load_economy()
    if config.backend == "local":
        from harness.backends.embedded import LocalBackend

        return LocalBackend(economy, config.nodes, config.link)
    if config.backend == "kwok":
        raise BackendUnavailable(
            "the kwok backend is not wired into `harness run` yet: its control plane "
            "(harness.backends.kwok: KwokCluster, collect_placements) exists, but placing "
            "with netmarks/firmament on it needs the extender and scheduler processes; "
            "use --backend local (the embedded default)"
        )
    raise BackendUnavailable(
        "the kubernetes backend is not available in `harness run` yet "
        "(harness.backends.kubernetes); use --backend local (the embedded default)"
    )
