"""How the kubernetes backend installs and measures the testbed: `KubernetesOptions`.

Defaults suit `harness run` as is; SETTLERS_KUBE_* / SETTLERS_PROMETHEUS_* variables
and the experiment's ``--kube-*`` settings override them (`options_for`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.backends.kubernetes.helm import CHART_DIR

if TYPE_CHECKING:
    from results.config import ExperimentConfig
    from schedulers.spec import KubernetesCounterpart

__all__ = ["HARNESS_OWNER", "KubernetesOptions", "harness_release_name", "options_for"]

# The chart's `managedBy` value on every release the harness installs: it changes and
# uninstalls only releases that carry it, never a user's own.
HARNESS_OWNER = "settlers-harness"


def harness_release_name(namespace: str) -> str:
    """The harness's own release name in ``namespace``: ``settlers-harness-<hash>``,
    apart from any name a user would pick (the chart's NOTES suggest ``settlers``) and
    the same on every run in the namespace, so a run can take over a release an earlier
    run left behind (``keep``) and nothing else."""
    import hashlib

    return f"{HARNESS_OWNER}-{hashlib.sha256(namespace.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class KubernetesOptions:
    """Where and how to install the testbed. Defaults suit `harness run` as is."""

    context: str | None = None          # kubeconfig context (None = current)
    kubeconfig: Path | None = None      # None = $KUBECONFIG or ~/.kube/config
    namespace: str = "settlers"
    # The Helm release the harness installs ("" = `harness_release_name(namespace)`).
    release: str = ""
    chart: Path = CHART_DIR
    # The user's own values files (image, Istio, Prometheus, ...): the harness's
    # phase values go on top of them.
    values_files: tuple[Path, ...] = ()
    # Prometheus as the cluster sees it (the chart's prometheus.url, for NetMARKS).
    prometheus_url: str | None = None
    # Prometheus as this process reaches it (e.g. a port-forward), for traffic
    # snapshots; None = no byte counts.
    prometheus_query_url: str | None = None
    port: int = 8080
    # policy -> schedulerName, over the policy table's (``SPEC.kubernetes``): to point a
    # policy at a scheduler of another name in this cluster.
    scheduler_names: Mapping[str, str] = field(default_factory=dict)
    # Schedulers the user named for this run (policy -> counterpart), beside the table.
    extra: Mapping[str, KubernetesCounterpart] = field(default_factory=dict)
    # Who runs a policy's scheduler (netmarks-scheduler, firmament) while it places:
    # "chart" (the chart's Deployments), "host" (processes on this machine, `hostsched`),
    # "external" (already running), or "auto": host when the nodes are kwok's fakes,
    # else chart. A scheduler the user runs (``external`` in the table) is never started.
    schedulers: str = "auto"
    nodes: tuple[str, ...] | None = None  # restrict to these nodes (default: all usable)
    # Where layouts are measured: "cluster" (pinned pods + the order-app Job),
    # "emulated" (the emulated cluster on this machine), or "auto": emulated when the
    # nodes are kwok's fakes (they run no containers), else cluster.
    data_plane: str = "auto"
    link: str = "edge"                  # link preset of the emulated data plane
    timeout_s: float = 300.0
    keep: bool = False                  # leave the release installed at close()

    def __post_init__(self) -> None:
        if not self.release:
            object.__setattr__(self, "release", harness_release_name(self.namespace))

    @classmethod
    def from_env(cls, **overrides: Any) -> KubernetesOptions:
        """Defaults, then SETTLERS_KUBE_* / SETTLERS_PROMETHEUS_* variables, then overrides."""
        env = os.environ
        opts: dict[str, Any] = {}
        for key, var in (("namespace", "SETTLERS_KUBE_NAMESPACE"),
                         ("release", "SETTLERS_KUBE_RELEASE"),
                         ("schedulers", "SETTLERS_KUBE_SCHEDULERS"),
                         ("data_plane", "SETTLERS_KUBE_DATA_PLANE"),
                         ("prometheus_url", "SETTLERS_PROMETHEUS_URL"),
                         ("prometheus_query_url", "SETTLERS_PROMETHEUS_QUERY_URL")):
            if env.get(var):
                opts[key] = env[var]
        if env.get("SETTLERS_KUBE_KEEP", "").lower() in ("1", "true", "yes"):
            opts["keep"] = True
        if env.get("SETTLERS_KUBE_VALUES"):
            opts["values_files"] = tuple(Path(p) for p in env["SETTLERS_KUBE_VALUES"].split(",")
                                         if p.strip())
        opts.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**opts)


def options_for(config: ExperimentConfig, **options: Any) -> KubernetesOptions:
    """Defaults < SETTLERS_KUBE_* variables < the experiment's kube settings < `options`,
    completed for a real-node cluster of this machine when the context names one."""
    return with_real_nodes(KubernetesOptions.from_env(
        **{"context": config.kube_context, "namespace": config.kube_namespace,
           "release": config.kube_release,
           "prometheus_url": config.prometheus_url, "extra": config.counterparts(),
           **options}))


def with_real_nodes(opts: KubernetesOptions) -> KubernetesOptions:
    """``--kube-context settlers-nodes-<name>`` (what `harness cluster up --backend nodes`
    prints): take that cluster's kubeconfig, its chart values (local images, Prometheus
    on the host; below the user's own values files) and its Prometheus for both the
    chart and the byte counts, unless the user set them."""
    from harness.backends.k8s.realnodes import CONTEXT_PREFIX, RealNodeCluster, RealNodesError

    if not opts.context or not opts.context.startswith(CONTEXT_PREFIX):
        return opts
    try:
        cluster = RealNodeCluster.attach(opts.context.removeprefix(CONTEXT_PREFIX))
    except RealNodesError:
        return opts   # a context of that name from the user's own kubeconfig
    url = cluster.prometheus_url
    return replace(
        opts,
        kubeconfig=opts.kubeconfig or cluster.kubeconfig,
        values_files=(cluster.values_file, *opts.values_files),
        prometheus_url=opts.prometheus_url or url,
        prometheus_query_url=opts.prometheus_query_url or url)
