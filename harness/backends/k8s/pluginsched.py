"""A "plugins" counterpart (``KubernetesCounterpart.kind == "plugins"``, e.g. Diktyo): a
second kube-scheduler binary built with out-of-tree plugins, and what those plugins read.

For one placement phase the harness asks the policy's ``setup`` ("module:function",
returning a ``schedulers.spec.PluginSetup``) what the plugins need, from the same inputs
the policy's model gets (economy, the cluster's nodes and labels, the network between
them, the warm-up's traffic, the run's scheduler options), then:

1. installs the CRDs (files under ``crds/`` in tools/k8s/build's cache, put there with
   the binary from the same source) and waits until they are established;
2. writes the custom objects, ``status`` included (no controller runs to write it: with
   a status subresource the status is written through it, without one it is part of
   the object);
3. runs the binary with a KubeSchedulerConfiguration whose one profile is the policy's
   schedulerName with the setup's plugins and pluginConfig (`host_schedulers`);
4. gives the setup's pod labels to the Deployments the round creates.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from harness.backends.base import BackendUnavailable
from harness.backends.k8s.binaries import bin_dir
from harness.backends.k8s.scheduler import scheduler_config
from schedulers.spec import KubernetesCounterpart, PluginSetup

if TYPE_CHECKING:
    from schedulers.network import NodeNetwork
    from schedulers.traffic import TrafficMatrix
    from settlers.economy import Economy

__all__ = [
    "install_setup",
    "plugin_binary",
    "plugin_scheduler",
    "plugin_scheduler_config",
    "plugin_setup",
]


@contextlib.contextmanager
def plugin_scheduler(policy: str, *, kubeconfig: Path, api_client: Any, economy: Economy,
                     network: NodeNetwork | None = None, traffic: TrafficMatrix | None = None,
                     options: Mapping[str, Any] | None = None,
                     timeout_s: float = 60.0) -> Iterator[PluginSetup]:
    """Run ``policy``'s real "plugins" scheduler (e.g. ``"diktyo"``) on a cluster while
    the block runs, with everything its plugins read installed first; yields the setup,
    whose ``pod_labels[workload]`` the pods must carry (and ``schedulerName`` the
    counterpart's). One call for a benchmark::

        with plugin_scheduler("diktyo", kubeconfig=cluster.kubeconfig,
                              api_client=cluster.api_client(), economy=econ) as setup:
            ...  # create pods with setup.pod_labels and schedulerName diktyo-scheduler

    ``network`` None: a flat network (every cross-zone or cross-region cost 1)."""
    from kubernetes import client

    from harness.backends.k8s.hostsched import host_schedulers
    from schedulers.registry import policy_spec

    found = policy_spec(policy).kubernetes
    if found is None or found.kind != "plugins":
        raise BackendUnavailable(f"{policy} has no \"plugins\" counterpart")
    core: Any = client.CoreV1Api(api_client)
    nodes = [(n.metadata.name, dict(n.metadata.labels or {})) for n in core.list_node().items]
    setup = plugin_setup(found, economy=economy, nodes=nodes, network=network,
                         traffic=traffic, options=dict(options or {}))
    install_setup(api_client, setup, timeout_s=timeout_s)
    with host_schedulers(found, found.scheduler_name, kubeconfig=kubeconfig, context=None,
                         traffic=traffic, timeout_s=timeout_s, setup=setup):
        yield setup


def plugin_binary(found: KubernetesCounterpart) -> Path:
    """The counterpart's kube-scheduler binary in the cache, or BackendUnavailable."""
    path = bin_dir() / str(found.binary)
    if not path.is_file():
        raise BackendUnavailable(
            f"{found.component}: no {found.binary} in {bin_dir()}; run tools/k8s/build "
            "(it builds it from the scheduler-plugins snapshot at "
            "$SETTLERS_SCHEDULER_PLUGINS, default <checkout>/../shared/third_party/"
            "scheduler-plugins, and says when that is missing)")
    return path


def plugin_setup(found: KubernetesCounterpart, **inputs: Any) -> PluginSetup:
    """Call the counterpart's ``setup`` with ``inputs`` (economy, nodes, network, traffic,
    options); an empty setup (the plugins' defaults) when it names none."""
    if not found.setup:
        return PluginSetup(plugins={})
    module, _, function = found.setup.partition(":")
    made = getattr(importlib.import_module(module), function)(**inputs)
    if not isinstance(made, PluginSetup):
        raise TypeError(f"{found.setup} returned a {type(made).__name__}, not a PluginSetup")
    return made


def plugin_scheduler_config(scheduler_name: str, kubeconfig: Path | None,
                            setup: PluginSetup) -> dict[str, Any]:
    """The KubeSchedulerConfiguration: one profile, the setup's plugins and pluginConfig."""
    cfg = scheduler_config(scheduler_name, kubeconfig)
    profile = cfg["profiles"][0]
    if setup.plugins:
        profile["plugins"] = dict(setup.plugins)
    if setup.plugin_config:
        profile["pluginConfig"] = [dict(c) for c in setup.plugin_config]
    return cfg


def install_setup(api_client: Any, setup: PluginSetup, *, crd_dir: Path | None = None,
                  timeout_s: float = 60.0) -> None:
    """Install the setup's CRDs (idempotent) and write its objects with their status."""
    from kubernetes import client

    crds = _read_crds(crd_dir or bin_dir() / "crds", setup.crds)
    ext = client.ApiextensionsV1Api(api_client)
    for crd in crds:
        _create_or_keep(lambda body: ext.create_custom_resource_definition(body), crd)
    for crd in crds:
        _wait_established(ext, crd["metadata"]["name"], timeout_s)
    custom = client.CustomObjectsApi(api_client)
    plurals = {(c["spec"]["group"], c["spec"]["names"]["kind"]): c["spec"]["names"]["plural"]
               for c in crds}
    for obj in setup.objects:
        _write_object(custom, obj, plurals)


def _read_crds(directory: Path, names: Iterable[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in names:
        path = directory / name
        if not path.is_file():
            raise BackendUnavailable(f"CRD {name} is not in {directory}: run tools/k8s/build "
                                     "(it installs the CRDs with the scheduler binary)")
        out.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return out


def _create_or_keep(create: Any, body: Mapping[str, Any]) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        create(body)
    except ApiException as exc:
        if exc.status != 409:  # already installed: the same build's CRD
            raise


def _wait_established(ext: Any, name: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        crd = ext.read_custom_resource_definition(name)
        conditions = (crd.status.conditions or []) if crd.status else []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.05)
    raise BackendUnavailable(f"CRD {name} not established after {timeout_s:.0f} s")


def _write_object(custom: Any, obj: Mapping[str, Any],
                  plurals: Mapping[tuple[str, str], str]) -> None:
    """Create (or replace) ``obj`` and make sure its ``status`` is what was given."""
    from kubernetes.client.exceptions import ApiException

    group, _, version = str(obj["apiVersion"]).partition("/")
    plural = plurals.get((group, str(obj["kind"])))
    if plural is None:
        raise ValueError(f"no CRD installed for {obj['kind']} ({group})")
    ns = obj["metadata"]["namespace"]
    name = obj["metadata"]["name"]
    body = dict(obj)
    try:
        made = custom.create_namespaced_custom_object(group, version, ns, plural, body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        current = custom.get_namespaced_custom_object(group, version, ns, plural, name)
        body["metadata"] = {**body["metadata"],
                            "resourceVersion": current["metadata"]["resourceVersion"]}
        made = custom.replace_namespaced_custom_object(group, version, ns, plural, name, body)
    if "status" in obj and made.get("status") != obj["status"]:
        # A status subresource drops status on create/replace: write it through it.
        made["status"] = obj["status"]
        custom.replace_namespaced_custom_object_status(group, version, ns, plural, name, made)
