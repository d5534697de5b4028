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
        from harness.backends.kwok import K8sBinariesMissing, binaries
        from harness.backends.kwok_placement import KWOK_SCHEDULERS, KwokBackend

        unsupported = [s for s in config.schedulers if s not in KWOK_SCHEDULERS]
        if unsupported:
            raise BackendUnavailable(
                f"no real-scheduler counterpart on the kwok backend for "
                f"{', '.join(unsupported)}; choose from {', '.join(KWOK_SCHEDULERS)}"
            )
        try:  # fail before the warm-up, not after it
            binaries()
        except K8sBinariesMissing as exc:
            raise BackendUnavailable(
                f"the kwok backend needs the Kubernetes binaries: {exc} (run tools/k8s/build)"
            ) from None
        return KwokBackend(economy, config.nodes, config.link)
    from harness.backends.kubernetes import open_kubernetes_backend

    return open_kubernetes_backend(config)
