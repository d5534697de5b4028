"""Which workloads run on which node: the extender's view of the cluster.

kube-scheduler's ExtenderArgs carry the pod and the candidate nodes, never the
pods already on them, so the extender keeps its own cache: fed by a watch on
the API server (``KubernetesPodWatcher``) or set directly (tests, benchmarks).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from schedulers.k8s_json import K8sObjectError, pod_key, workload_of
from schedulers.kube_api import KubernetesAPI

__all__ = ["KubernetesPodWatcher", "Placements"]

log = logging.getLogger("schedulers.extender")
_TERMINAL = {"Succeeded", "Failed"}


class Placements:
    """Thread-safe counts of pods per (node, workload); ``lock`` guards reads too."""

    def __init__(self, label_key: str = "app") -> None:
        self.label_key = label_key
        self.lock = threading.Lock()
        self.by_node: dict[str, dict[str, int]] = {}
        self.totals: dict[str, int] = {}
        self._pods: dict[str, tuple[str, str]] = {}  # pod key -> (node, workload)
        # Called with a pod's key whenever it is counted on a node (any thread).
        self.listeners: list[Callable[[str], None]] = []

    def __len__(self) -> int:
        return len(self._pods)

    def __contains__(self, key: object) -> bool:
        """Whether pod ``key`` ("ns/name") is counted on a node (bound)."""
        with self.lock:
            return key in self._pods

    def snapshot(self) -> dict[str, tuple[str, str]]:
        """Pod key ("ns/name") -> (node, workload), as the scores see them now."""
        with self.lock:
            return dict(self._pods)

    def set_pod(self, key: str, node: str, workload: str) -> None:
        with self.lock:
            self._set(key, node, workload)

    def remove_pod(self, key: str) -> None:
        with self.lock:
            self._remove(key)

    def replace(self, pods: Iterable[tuple[str, str, str]]) -> None:
        """Reset to exactly these (pod key, node, workload) triples (a fresh list)."""
        with self.lock:
            self.by_node.clear()
            self.totals.clear()
            self._pods.clear()
            for key, node, workload in pods:
                self._set(key, node, workload)

    def apply_event(self, kind: str, pod: Mapping[str, Any]) -> None:
        """Apply one watch event (ADDED / MODIFIED / DELETED) carrying a v1.Pod as JSON."""
        try:
            key = pod_key(pod)
        except K8sObjectError:
            return
        node = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        gone = (kind == "DELETED" or phase in _TERMINAL
                or (pod.get("metadata") or {}).get("deletionTimestamp"))
        if not node and not gone:
            # Not bound yet in this event. A pod is never unbound, so if we count it
            # already (our own bind verb recorded it) the event is older than that
            # binding: the watch reports the pod's creation after kube-scheduler handed
            # us the binding. Dropping the pod here would undo --bind.
            return
        with self.lock:
            if gone:
                self._remove(key)
            else:
                self._set(key, str(node), workload_of(pod, self.label_key))

    def _set(self, key: str, node: str, workload: str) -> None:
        if self._pods.get(key) == (node, workload):
            return
        self._remove(key)
        self._pods[key] = (node, workload)
        for listener in self.listeners:
            listener(key)
        counts = self.by_node.setdefault(node, {})
        counts[workload] = counts.get(workload, 0) + 1
        self.totals[workload] = self.totals.get(workload, 0) + 1

    def _remove(self, key: str) -> None:
        old = self._pods.pop(key, None)
        if old is None:
            return
        node, workload = old
        counts = self.by_node[node]
        counts[workload] -= 1
        if not counts[workload]:
            del counts[workload]
        self.totals[workload] -= 1
        if not self.totals[workload]:
            del self.totals[workload]


class KubernetesPodWatcher:
    """List + watch pods (an informer in miniature) into a :class:`Placements`: every
    namespace's, or only ``namespace``'s (what a namespaced Role lets it read)."""

    def __init__(self, placements: Placements, kubeconfig: str | None = None,
                 namespace: str | None = None) -> None:
        self.api = KubernetesAPI(kubeconfig).core
        self.namespace = namespace
        self.placements = placements
        self.synced = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        # Raw JSON throughout (_preload_content=False): client models for every pod
        # event, turned back into JSON, cost ~6 ms of CPU per pod at 10 000 pods
        # (bench/throughput.py); and a watch the server ends (timeout) resumes from the
        # last resourceVersion seen instead of relisting every pod of the cluster.
        while not self._stop.is_set():
            try:
                reply: Any = self._list(_preload_content=False)
                listing = json.loads(reply.data)
                reply.release_conn()
                fresh = Placements(self.placements.label_key)
                for pod in listing.get("items") or []:
                    fresh.apply_event("ADDED", pod)
                self.placements.replace(
                    (k, n, w) for k, (n, w) in fresh._pods.items())
                self.synced.set()
                version = (listing.get("metadata") or {}).get("resourceVersion")
                while not self._stop.is_set():
                    version = self._follow(version)
            except Exception as exc:  # the API server may come and go; relist
                log.warning("pod watch failed (%s); relisting in 1 s", exc)
                time.sleep(1.0)

    def _list(self, **kw: Any) -> Any:
        if self.namespace:
            return self.api.list_namespaced_pod(self.namespace, **kw)
        return self.api.list_pod_for_all_namespaces(**kw)

    def _follow(self, version: str | None) -> str | None:
        """One watch request from ``version`` until the server ends it; the last
        resourceVersion seen. Raises on an ERROR event (410 Gone: relist)."""
        stream: Any = self._list(
            watch=True, resource_version=version, allow_watch_bookmarks=True,
            timeout_seconds=60, _preload_content=False)
        try:
            for line in stream:
                if self._stop.is_set():
                    break
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    raise RuntimeError(f"watch error: {obj.get('message', obj)}")
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                if event.get("type") != "BOOKMARK":
                    self.placements.apply_event(str(event.get("type")), obj)
        finally:
            stream.release_conn()
        return version
