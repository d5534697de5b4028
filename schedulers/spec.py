"""What a policy is, in one typed record each policy module declares next to NAME and new().

The registry (``schedulers.registry``) turns these records into the one table the
rest of the testbed reads: the harness's help texts and known-policy validation,
whether a policy gets the warm-up's traffic matrix, and (on the kwok and
kubernetes backends) which real scheduler stands for it and how it is started.

Reading a ``SPEC`` imports its module, so the registry reads one only when asked
(names alone come from the registry's table and from entry-point metadata).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "KUBERNETES_KINDS",
    "ExtenderCall",
    "KubernetesCounterpart",
    "KubernetesKind",
    "PluginSetup",
    "PolicySpec",
]

# How a policy's real counterpart places pods on a Kubernetes control plane:
# - "default":  kube-scheduler's default profile, the cluster's own scheduler;
#               nothing to start (the chart leaves schedulerName unset for it);
# - "extender": a second kube-scheduler whose one profile (``scheduler_name``) calls
#               an extender webhook for scores (NetMARKS);
# - "custom":   a scheduler process of its own that binds pods carrying
#               ``scheduler_name`` through the Binding API (firmament);
# - "plugins":  a second kube-scheduler built with out-of-tree plugins (``binary``, from
#               tools/k8s/build's cache) whose one profile (``scheduler_name``) enables
#               them; ``setup`` says what else the plugins need (Diktyo: CRDs, objects).
KubernetesKind = Literal["default", "extender", "custom", "plugins"]
KUBERNETES_KINDS: tuple[KubernetesKind, ...] = ("default", "extender", "custom", "plugins")
_SETUP_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_BINARY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# A pod's spec.schedulerName is a DNS-1123 subdomain; a profile name must be one too.
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_POLICY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class ExtenderCall:
    """An extender already serving at ``url`` (yours): the harness runs the kube-scheduler
    profile that calls it (one ``extenders:`` entry, k8s.io/kube-scheduler/config/v1)."""

    url: str
    weight: int = 1
    prioritize_verb: str = "prioritize"
    filter_verb: str | None = None
    # False: a failing extender fails the pod's scheduling cycle instead of being
    # skipped, so what is measured is your extender, never the default profile alone.
    ignorable: bool = False

    def __post_init__(self) -> None:
        if not re.match(r"^https?://[^\s/]+", self.url):
            raise ValueError(f"extender url must be http(s)://host[:port][/path], got {self.url!r}")
        if self.weight < 1:
            raise ValueError(f"extender weight must be >= 1, got {self.weight}")


@dataclass(frozen=True)
class KubernetesCounterpart:
    """The real scheduler that stands for a policy on the kwok and kubernetes backends.

    ``host_command``, ``chart_key``, ``extender`` and ``command`` say who starts it;
    with none of them (and a kind other than "default") the user runs it: a binary
    or Deployment of their own that answers to ``scheduler_name`` (``external``).
    """

    # The schedulerName pods carry to be placed by it (the profile name for an extender).
    scheduler_name: str
    kind: KubernetesKind
    # What places the pods, in words, for the run's report ("NetMARKS extender").
    component: str
    # On clusters whose pods cannot run it (kwok's fake nodes) the harness runs it on
    # this machine as ``schedulers <host_command...>``, adding per phase:
    # extender: --traffic FILE --host 127.0.0.1 --port P --kubeconfig KC (and starts a
    #           kube-scheduler whose profile calls it);
    # custom:   --kubeconfig KC --scheduler-name NAME --traffic FILE, and
    #           --network FILE when the policy uses_network (kwok with a topology:
    #           schedulers.netfile's format).
    # Empty: nothing of ours to start.
    host_command: tuple[str, ...] = ()
    # The chart component that deploys it in the cluster (``<chart_key>.enabled``);
    # None: the chart has none.
    chart_key: str | None = None
    # extender: the user's extender at a URL; the harness runs the profile calling it
    # (on this machine: the kwok backend, the kubernetes backend's host mode).
    extender: ExtenderCall | None = None
    # A program of the user's that the harness runs on this machine while the policy
    # places (argv; "{kubeconfig}" and "{scheduler_name}" are filled in and
    # $KUBECONFIG is set): how a scheduler reaches kwok's short-lived control plane.
    command: tuple[str, ...] = ()
    # plugins: the kube-scheduler binary's file name in tools/k8s/build's cache, and
    # "module:function" returning a PluginSetup (see there) for one placement phase.
    binary: str | None = None
    setup: str | None = None

    def __post_init__(self) -> None:
        self._check_plugins()
        if self.kind not in KUBERNETES_KINDS:
            raise ValueError(f"kind must be one of {', '.join(KUBERNETES_KINDS)}, "
                             f"got {self.kind!r}")
        if not _DNS_SUBDOMAIN.match(self.scheduler_name):
            raise ValueError(f"scheduler_name {self.scheduler_name!r} is not a valid "
                             "schedulerName (lowercase DNS subdomain)")
        if self.kind == "default" and (self.host_command or self.chart_key or self.extender
                                       or self.command):
            raise ValueError("kube-scheduler's default profile is the cluster's own: "
                             "no host_command, chart_key, extender or command")
        if self.extender is not None and (self.kind != "extender" or self.host_command):
            raise ValueError("extender= is the URL of an extender of kind \"extender\" "
                             "that the harness does not start itself (no host_command)")

    def _check_plugins(self) -> None:
        if self.kind != "plugins":
            if self.binary is not None or self.setup is not None:
                raise ValueError("binary= and setup= are for kind \"plugins\" only")
            return
        if not self.binary or not _BINARY.match(self.binary):
            raise ValueError(f"kind \"plugins\" needs binary=, a file name in "
                             f"tools/k8s/build's cache, got {self.binary!r}")
        if self.setup is not None and not _SETUP_REF.match(self.setup):
            raise ValueError(f"setup must be \"module:function\", got {self.setup!r}")
        if self.host_command or self.extender or self.command or self.chart_key:
            raise ValueError("kind \"plugins\" is started by the harness from binary=: "
                             "no host_command, extender, command or chart_key")

    @property
    def external(self) -> bool:
        """True when neither the harness nor the chart starts it: the user runs it."""
        return (self.kind not in ("default", "plugins") and not self.host_command
                and self.chart_key is None and self.extender is None and not self.command)


@dataclass(frozen=True)
class PluginSetup:
    """What a "plugins" counterpart needs for one placement phase besides its binary.

    Pure data, so a policy module can say it without importing the harness: the profile's
    ``plugins`` and ``pluginConfig`` (k8s.io/kube-scheduler/config/v1), the CRDs to install
    (file names under ``crds/`` in tools/k8s/build's cache), the custom objects to write
    before the pods are created (``status`` included: the harness writes it, as the
    objects' controllers would), and the labels the pods of each workload carry.
    """

    plugins: Mapping[str, Any]
    plugin_config: tuple[Mapping[str, Any], ...] = ()
    crds: tuple[str, ...] = ()
    objects: tuple[Mapping[str, Any], ...] = ()
    pod_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicySpec:
    """What a policy is: its name, one line about it, its inputs, its real counterpart."""

    name: str
    summary: str
    # True: new() takes ``traffic=`` and the harness passes the warm-up's matrix.
    uses_traffic: bool = False
    # True: new() takes ``network=`` (a schedulers.network.NodeNetwork: delay and
    # bandwidth between nodes, from the experiment's topology).
    uses_network: bool = False
    # True: new() takes ``economy=`` (the settlers.economy.Economy being deployed:
    # which workload depends on which, as Diktyo's AppGroup).
    uses_economy: bool = False
    # None: a Python model only (the local backend); no real scheduler stands for it.
    kubernetes: KubernetesCounterpart | None = None
    # The rebalancer that moves running pods for it in dynamic scenarios (a name in
    # ``schedulers.rebalancers.rebalancer_names()``); None: it never moves a pod.
    rebalancer: str | None = None

    def __post_init__(self) -> None:
        if not _POLICY_NAME.match(self.name):
            raise ValueError(f"policy name {self.name!r}: a letter, then letters, digits, "
                             "'_', '-' or '.' (at most 63)")
        if "\n" in self.summary:
            raise ValueError(f"{self.name}: summary is one line")
        if self.rebalancer is not None and not _POLICY_NAME.match(self.rebalancer):
            raise ValueError(f"{self.name}: rebalancer {self.rebalancer!r} is not a name")
