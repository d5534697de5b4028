"""One deployment of the economy that stays, and pods moved in it through the API.

A placement round (``placements``) creates the Deployments, reads where their pods
landed and deletes them. A scenario needs the opposite: one deployment that stays
while pods are moved and nodes are cordoned. `LiveDeployment` is that deployment.

A move is what a descheduler does plus the binding a custom scheduler makes: evict the
pod through the Eviction API (policy/v1, so a PodDisruptionBudget would be honoured),
let its ReplicaSet create the replacement (kube-controller-manager runs in every kwok
cluster), and bind the replacement to the chosen node with a Binding.

The race, and how it is avoided: the replacement carries its template's schedulerName,
so the cluster's scheduler would bind it within milliseconds, usually before we could.
For the move, the replacement is created with a schedulerName nobody serves
(`HELD_SCHEDULER`), so nothing but our Binding places it. Patching the *Deployment's*
template would roll every pod of the Deployment (all replicas, not the one moved), so
the move instead

1. pauses the Deployment (a paused Deployment does not roll out a template change) and
   waits until the Deployment controller has seen the pause;
2. sets the ReplicaSet's own template schedulerName to `HELD_SCHEDULER` and waits until
   the ReplicaSet controller has seen it (``status.observedGeneration``);
3. evicts the pod; the ReplicaSet creates one replacement, which stays Pending;
4. binds the replacement to the node;
5. restores the ReplicaSet's template (identical to the Deployment's again, so no new
   ReplicaSet) and waits until the controllers have seen it, then resumes the Deployment.

Step 5 runs whatever happens (an eviction refused by a PodDisruptionBudget, a
replacement that never comes), so a failed move leaves the Deployment as it was.
Moves are serialised: two moves in one Deployment at once would share its pause.

A Binding skips the scheduler's checks: the caller (a rebalancer) is responsible for
the node having room. kwok nodes accept any pod bound to them.

Pod names: the API's pods have generated names (``flour-6d9f7c-x2k4q``); the emulated
cluster and the Python schedulers call them ``<item>-<i>`` (`workloads.emulated_names`).
A `LiveDeployment` keeps both directions of that mapping; a replacement gets the next
unused index of its item (``flour-1`` after ``flour-0``), never a name used before.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.backends.k8s.cluster import KwokCluster, KwokError
from harness.backends.k8s.placements import economy_deployments
from harness.backends.k8s.workloads import (
    create_deployments,
    delete_namespace,
    emulated_names,
    wait_bound,
)
from settlers.economy import Economy

__all__ = ["HELD_SCHEDULER", "LiveDeployment", "cordon"]

# A schedulerName no scheduler serves: a pod carrying it waits for our Binding.
HELD_SCHEDULER = "settlers-held-for-binding"

_POLL_S = 0.05


def cordon(cluster: KwokCluster, node: str, on: bool = True) -> None:
    """Mark ``node`` unschedulable (``on``) or schedulable again, as `kubectl cordon` does."""
    cluster.core_v1().patch_node(node, {"spec": {"unschedulable": on}})


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise KwokError(f"{what}: not after {timeout:.0f} s")
        time.sleep(_POLL_S)


class LiveDeployment:
    """The economy's Deployments in their own namespace, staying until `delete()`.

    Create one with `LiveDeployment.create(...)`; `assignments` is where every pod
    is (emulated names), `move` and `cordon` change it.
    """

    def __init__(self, cluster: KwokCluster, namespace: str, names: Mapping[str, str],
                 timeout: float = 60.0) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.timeout = timeout
        self._emulated: dict[str, str] = dict(names)  # API name -> emulated name
        self._api = {v: k for k, v in self._emulated.items()}  # emulated -> API name
        # Next index per item: a replacement never takes a name used before.
        self._next: dict[str, int] = {}
        for name in self._api:
            item, _, index = name.rpartition("-")
            self._next[item] = max(self._next.get(item, 0), int(index) + 1)
        self._lock = threading.Lock()

    @classmethod
    def create(cls, cluster: KwokCluster, economy: Economy, scheduler_name: str, *,
               order: Sequence[str] | None = None,
               pod_labels: Mapping[str, Mapping[str, str]] | None = None,
               timeout: float = 60.0) -> tuple[LiveDeployment, float]:
        """Create the economy's Deployments (in ``order``) in a fresh namespace under
        ``scheduler_name`` and wait until every pod is bound; returns the deployment and
        the seconds from the first create to the last binding. On failure the namespace
        is deleted again."""
        core: Any = cluster.core_v1()
        ns = f"live-{uuid.uuid4().hex[:8]}"
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": ns}})
        try:
            specs = economy_deployments(economy, order, pod_labels)
            t0 = time.perf_counter()
            create_deployments(cluster, ns, specs, scheduler_name)
            pods = wait_bound(cluster, ns, sum(s.replicas for s in specs), timeout)
            seconds = time.perf_counter() - t0
        except BaseException:
            delete_namespace(cluster, ns, timeout)
            raise
        return cls(cluster, ns, emulated_names(pods), timeout), seconds

    # ----- names and layout -------------------------------------------------------
    def api_name(self, pod: str) -> str:
        """The API's name of the pod the emulated side calls ``pod``."""
        try:
            return self._api[pod]
        except KeyError:
            raise KeyError(f"no pod {pod!r} in {self.namespace} "
                           f"(pods: {', '.join(sorted(self._api))})") from None

    def emulated_name(self, api_name: str) -> str:
        return self._emulated[api_name]

    @property
    def names(self) -> dict[str, str]:
        """Emulated name -> API name, of the pods there are now."""
        return dict(self._api)

    @property
    def assignments(self) -> dict[str, str]:
        """Emulated pod name -> node, read from the API now."""
        pods = self.cluster.core_v1().list_namespaced_pod(self.namespace).items
        node = {p.metadata.name: p.spec.node_name for p in pods if p.spec.node_name}
        return {name: node[api] for name, api in self._api.items() if api in node}

    # ----- moves ------------------------------------------------------------------
    def move(self, pod: str, node: str) -> tuple[str, str]:
        """Evict ``pod`` (emulated name), bind its ReplicaSet's replacement to ``node``
        and wait until the old pod is gone; returns (replacement's emulated name, the
        node it is bound to). Raises KwokError when a step does not happen in time."""
        with self._lock:
            old = self.api_name(pod)
            core, apps = self.cluster.core_v1(), self.cluster.apps_v1()
            rs_name, deployment = self._owners(old)
            known = set(self._emulated)
            original = self._set_held(apps, deployment, rs_name)
            try:
                core.create_namespaced_pod_eviction(old, self.namespace, {
                    "apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": {"name": old, "namespace": self.namespace}})
                new = self._replacement(rs_name, known)
                bound = self._bind(new, node)
            finally:
                self._release(apps, deployment, rs_name, original)
            self._wait_gone(old)
            item = pod.rpartition("-")[0]
            new_pod = f"{item}-{self._next[item]}"
            self._next[item] += 1
            del self._api[pod], self._emulated[old]
            self._api[new_pod], self._emulated[new] = new, new_pod
            return new_pod, bound

    def _owners(self, pod: str) -> tuple[str, str]:
        """The ReplicaSet owning ``pod`` and the Deployment owning that."""
        p = self.cluster.core_v1().read_namespaced_pod(pod, self.namespace)
        rs = next((o.name for o in p.metadata.owner_references or []
                   if o.kind == "ReplicaSet"), None)
        if rs is None:
            raise KwokError(f"{pod}: no ReplicaSet owns it, nothing would replace it")
        r = self.cluster.apps_v1().read_namespaced_replica_set(rs, self.namespace)
        dep = next((o.name for o in r.metadata.owner_references or []
                    if o.kind == "Deployment"), None)
        if dep is None:
            raise KwokError(f"{rs}: no Deployment owns it")
        return rs, dep

    def _set_held(self, apps: Any, deployment: str, rs: str) -> str:
        """Pause the Deployment, give its ReplicaSet's template the held schedulerName;
        returns the template's schedulerName before."""
        apps.patch_namespaced_deployment(deployment, self.namespace, {"spec": {"paused": True}})
        self._wait_observed("deployment", deployment)
        r = apps.read_namespaced_replica_set(rs, self.namespace)
        original = str(r.spec.template.spec.scheduler_name or "default-scheduler")
        apps.patch_namespaced_replica_set(rs, self.namespace, {"spec": {"template": {
            "spec": {"schedulerName": HELD_SCHEDULER}}}})
        self._wait_observed("replicaset", rs)
        return original

    def _release(self, apps: Any, deployment: str, rs: str, original: str) -> None:
        """Undo `_set_held`: the ReplicaSet's template as the Deployment's again (seen by
        the controllers, or resuming would roll out a new ReplicaSet), then resume."""
        apps.patch_namespaced_replica_set(rs, self.namespace, {"spec": {"template": {
            "spec": {"schedulerName": original}}}})
        self._wait_observed("replicaset", rs)
        apps.patch_namespaced_deployment(deployment, self.namespace,
                                         {"spec": {"paused": False}})
        self._wait_observed("deployment", deployment)

    def _wait_observed(self, kind: str, name: str) -> None:
        """Until the object's controller has seen its current spec (the controllers
        share one informer cache in kube-controller-manager)."""
        apps = self.cluster.apps_v1()
        read = (apps.read_namespaced_deployment_status if kind == "deployment"
                else apps.read_namespaced_replica_set_status)

        def seen() -> bool:
            obj = read(name, self.namespace)
            return bool((obj.status.observed_generation or 0) >= obj.metadata.generation)

        _wait(f"{kind} {self.namespace}/{name} observed by its controller", seen,
              self.timeout)

    def _replacement(self, rs: str, known: set[str]) -> str:
        """The API name of the pod ``rs`` created after the eviction."""
        core = self.cluster.core_v1()
        found: list[str] = []

        def created() -> bool:
            for p in core.list_namespaced_pod(self.namespace).items:
                owners = {o.name for o in p.metadata.owner_references or []
                          if o.kind == "ReplicaSet"}
                if (rs in owners and p.metadata.name not in known
                        and p.metadata.deletion_timestamp is None):
                    found.append(p.metadata.name)
                    return True
            return False

        _wait(f"replacement from {self.namespace}/{rs}", created, self.timeout)
        return found[0]

    def _bind(self, pod: str, node: str) -> str:
        """Bind ``pod`` to ``node``; the node it is bound to (another only if someone
        bound it first, which the held schedulerName should prevent)."""
        from kubernetes.client.exceptions import ApiException

        core = self.cluster.core_v1()
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": pod, "namespace": self.namespace},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        try:
            # Unparsed: the client's V1Binding model rejects the API's reply (no target).
            core.create_namespaced_pod_binding(pod, self.namespace, body,
                                               _preload_content=False).release_conn()
        except ApiException as exc:
            if exc.status != 409:  # 409: already bound
                raise
        return str(core.read_namespaced_pod(pod, self.namespace).spec.node_name)

    def _wait_gone(self, pod: str) -> None:
        from kubernetes.client.exceptions import ApiException

        core = self.cluster.core_v1()

        def gone() -> bool:
            try:
                core.read_namespaced_pod(pod, self.namespace)
            except ApiException as exc:
                if exc.status == 404:
                    return True
                raise
            return False

        _wait(f"evicted pod {self.namespace}/{pod} gone", gone, self.timeout)

    # ----- nodes and the end ------------------------------------------------------
    def cordon(self, node: str, on: bool = True) -> None:
        cordon(self.cluster, node, on)

    def delete(self) -> None:
        """Delete the Deployments and the namespace; wait until their pods are gone."""
        delete_namespace(self.cluster, self.namespace, self.timeout)
