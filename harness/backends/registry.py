"""The backends `harness run` can drive: one row each, no if-chain.

A row says what the backend is (its `BackendDescription`, which the manifest and the
report state: this table is its one home), how its own options are built from an
experiment's config, and how its two halves open (placer, data-plane factory); the
registry composes them into a `Backend`. Backends take their options, never the whole
`ExperimentConfig`; their modules are imported on first use, so choosing ``local``
never loads the Kubernetes client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from harness.backends.base import Backend, BackendUnavailable, DataPlaneFactory, Placer
from results.manifest import BackendDescription
from settlers.economy import Economy

if TYPE_CHECKING:
    from harness.backends.kubernetes.options import KubernetesOptions
    from harness.backends.kwok.backend import KwokOptions
    from harness.backends.local.backend import LocalOptions
    from results.config import ExperimentConfig

__all__ = ["BACKENDS", "BackendEntry", "backend_for", "describe", "open_backend"]

Opts = TypeVar("Opts")
Halves = tuple[Placer, DataPlaneFactory]


@dataclass(frozen=True)
class BackendEntry(Generic[Opts]):
    """One backend: what it is, its options from a config, and how its halves open."""

    description: BackendDescription
    options: Callable[[ExperimentConfig], Opts]
    open: Callable[[Economy, Opts], Halves]


# -- local: the Python models place, the emulated cluster measures --------------------
def _local_options(config: ExperimentConfig) -> LocalOptions:
    from harness.backends.local.backend import LocalOptions

    return LocalOptions(nodes=config.nodes, link=config.link, topology=config.topology,
                        node_cpu_m=config.node_cpu_m(), cpu_scale=config.cpu_scale,
                        scheduler_options=config.scheduler_options)


def _open_local(economy: Economy, options: LocalOptions) -> Halves:
    from harness.backends.local.backend import open_local

    return open_local(economy, options)


# -- kwok: the real kube-scheduler places on a kwok control plane -----------------------
def _kwok_options(config: ExperimentConfig) -> KwokOptions:
    from harness.backends.kwok.backend import KwokOptions

    return KwokOptions(nodes=config.nodes, link=config.link,
                       schedulers=tuple(config.schedulers), extra=config.counterparts(),
                       topology=config.topology, node_cpu_m=config.node_cpu_m(),
                       cpu_scale=config.cpu_scale,
                       scheduler_options=config.scheduler_options or {})


def _open_kwok(economy: Economy, options: KwokOptions) -> Halves:
    from harness.backends.kwok.backend import open_kwok

    return open_kwok(economy, options)


# -- kubernetes: a real cluster's schedulers place, the cluster measures ----------------
def _kubernetes_options(config: ExperimentConfig) -> KubernetesOptions:
    """--kube-context, --kube-namespace and --prometheus-url; the rest from
    SETTLERS_KUBE_* variables. Flags beat variables."""
    from harness.backends.kubernetes.options import options_for

    return options_for(config)


def _open_kubernetes(economy: Economy, options: KubernetesOptions) -> Halves:
    from harness.backends.kubernetes.backend import open_kubernetes

    return open_kubernetes(economy, options)


BACKENDS: Mapping[str, BackendEntry[Any]] = {
    "local": BackendEntry(
        BackendDescription(name="local", places="the Python scheduler models",
                           measures="the emulated cluster"),
        _local_options, _open_local),
    "kwok": BackendEntry(
        BackendDescription(
            name="kwok",
            places=("the real schedulers each policy's counterpart names (kube-scheduler, "
                    "NetMARKS as its extender, kube-scheduler with Diktyo's plugins, the "
                    "firmament and trade binders) on a kwok control plane"),
            measures="the emulated cluster"),
        _kwok_options, _open_kwok),
    "kubernetes": BackendEntry(
        BackendDescription(name="kubernetes", places="the cluster's schedulers",
                           measures=("the real cluster (mesh byte counters from "
                                     "Prometheus: Istio's, or the producers' own with "
                                     "the chart's metrics.meshBytes)")),
        _kubernetes_options, _open_kubernetes),
}


def _entry(name: str) -> BackendEntry[Any]:
    try:
        return BACKENDS[name]
    except KeyError:
        raise BackendUnavailable(
            f"no backend {name!r}; choose from {', '.join(BACKENDS)}") from None


def describe(name: str) -> BackendDescription:
    """What backend ``name`` is (for the manifest and the report)."""
    return _entry(name).description


def open_backend(name: str, economy: Economy, options: Any) -> Backend:
    """Open backend ``name`` with its own options (`LocalOptions`, `KwokOptions`,
    `KubernetesOptions`); BackendUnavailable says why it cannot run here."""
    entry = _entry(name)
    return Backend(entry.description, *entry.open(economy, options))


def backend_for(config: ExperimentConfig) -> Backend:
    """The backend an experiment names, with options built from its config."""
    entry = _entry(config.backend)
    return Backend(entry.description, *entry.open(config.load_economy(), entry.options(config)))
