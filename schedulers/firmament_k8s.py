"""The firmament custom scheduler for Kubernetes: batch rounds, bound via the Binding API.

Like Poseidon, every round takes *all* pending pods that name our
``schedulerName`` (Poseidon issue #186), solves one flow problem for them
against the pods already running, and binds the placements. With ``settle_s``
a round first waits until no new pod has arrived for that long, so a
deployment whose pods trickle in over a second is placed as one batch (what
the Python model assumes) instead of being cut at an arbitrary interval tick. The API is
behind :class:`ClusterAPI` so the loop is unit-tested with a fake; the real
one (:class:`KubernetesAPI`) uses the official client.

Binds go out ``bind_workers`` at a time: each is one HTTP round trip to the API
server, and one at a time they, not the solve, set the pace of a large batch
(bench/throughput.py: 10 000 pods on 1000 nodes). The report's ``bound`` keeps the
policy's order whatever order the replies come back in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from schedulers.framework import Policy
from schedulers.k8s_json import K8sObjectError, node_from_json, pod_from_json, pod_key
from schedulers.kube_api import KubernetesAPI
from schedulers.model import Node, Pod

__all__ = ["BatchReport", "ClusterAPI", "FirmamentScheduler", "KubernetesAPI"]

log = logging.getLogger("schedulers.firmament")
JSON = Mapping[str, Any]


class ClusterAPI(Protocol):
    def list_nodes(self) -> list[JSON]: ...

    def list_pods(self, field_selector: str = "") -> list[JSON]:
        """All pods, or those matching a Kubernetes field selector (a hint: callers
        still filter what comes back)."""
        ...

    def bind(self, namespace: str, pod: str, node: str) -> None: ...


@dataclass
class BatchReport:
    pending: int = 0
    bound: list[tuple[str, str]] = field(default_factory=list)  # (ns/pod, node)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (ns/pod, reason)
    unschedulable: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Where the round's time went: listing nodes and pods, the policy, the binds.
    list_s: float = 0.0
    solve_s: float = 0.0
    bind_s: float = 0.0


def _ready(node: JSON) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return True  # no conditions reported (e.g. a bare test object): trust it


class FirmamentScheduler:
    """``policy`` is a Policy, or a factory called once per round (e.g. to refresh the
    traffic matrix between rounds)."""

    def __init__(self, api: ClusterAPI, policy: Policy | Callable[[], Policy], *,
                 scheduler_name: str = "firmament", label_key: str = "app",
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], object] = time.sleep,
                 bind_workers: int = 1) -> None:
        if bind_workers < 1:
            raise ValueError(f"bind_workers must be >= 1, got {bind_workers}")
        self.api = api
        self.bind_workers = bind_workers
        self._policy = policy
        self.scheduler_name = scheduler_name
        self.label_key = label_key
        self._clock = clock
        self._sleep = sleep

    def policy(self) -> Policy:
        return self._policy if isinstance(self._policy, Policy) else self._policy()

    def _pending(self, pod: JSON) -> bool:
        spec = pod.get("spec") or {}
        return (spec.get("schedulerName") == self.scheduler_name and not spec.get("nodeName")
                and (pod.get("status") or {}).get("phase", "Pending") == "Pending"
                and not (pod.get("metadata") or {}).get("deletionTimestamp"))

    def _pending_keys(self) -> set[str]:
        # settle() polls this several times a second: let the API server send only our
        # unbound pods instead of serialising every pod of the cluster each time.
        ours = f"spec.schedulerName={self.scheduler_name},spec.nodeName=,status.phase=Pending"
        # An API that can list names alone (KubernetesAPI) saves serialising every
        # pending pod per poll; the field selector then does all the filtering.
        keys_only = getattr(self.api, "list_pod_keys", None)
        if keys_only is not None:
            return set(keys_only(ours))
        return {pod_key(raw) for raw in self.api.list_pods(ours) if self._pending(raw)}

    def settle(self, quiet_s: float, max_wait_s: float) -> int:
        """Wait until no new pending pod has appeared for ``quiet_s`` seconds (at most
        ``max_wait_s``); return how many are pending. Returns at once when none are."""
        start = last_change = self._clock()
        seen = self._pending_keys()
        if not seen:
            return 0
        poll = max(0.01, min(0.05, quiet_s / 4))
        while True:
            now = self._clock()
            if now - last_change >= quiet_s or now - start >= max_wait_s:
                return len(seen)
            self._sleep(poll)
            keys = self._pending_keys()
            if keys - seen:
                last_change = self._clock()
            seen = keys

    def run_once(self) -> BatchReport:
        start = time.perf_counter()
        report = BatchReport()
        nodes: list[Node] = []
        for raw in self.api.list_nodes():
            try:
                if _ready(raw):
                    nodes.append(node_from_json(raw))
            except K8sObjectError as exc:
                log.warning("skipping node: %s", exc)
        known = {n.name for n in nodes}
        pending: list[Pod] = []
        running: list[tuple[Pod, str]] = []
        for raw in self.api.list_pods():
            try:
                node = (raw.get("spec") or {}).get("nodeName")
                phase = (raw.get("status") or {}).get("phase")
                if self._pending(raw):
                    pending.append(pod_from_json(raw, self.label_key, name=pod_key(raw)))
                elif node in known and phase not in ("Succeeded", "Failed"):
                    running.append((pod_from_json(raw, self.label_key, name=pod_key(raw)),
                                    str(node)))
            except K8sObjectError as exc:
                log.warning("skipping pod: %s", exc)
        report.pending = len(pending)
        report.list_s = time.perf_counter() - start
        if pending and nodes:
            result = self.policy().schedule(pending, nodes, running=running)
            report.solve_s = time.perf_counter() - start - report.list_s
            todo = [(key, result.assignments[key]) for key in
                    result.order or list(result.assignments) if key in result.assignments]
            for (key, node), error in zip(todo, self._bind_all(todo), strict=True):
                if error is None:
                    report.bound.append((key, node))
                else:  # e.g. 409: someone else bound or deleted it
                    log.warning("binding %s to %s failed: %s", key, node, error)
                    report.failed.append((key, error))
            report.bind_s = time.perf_counter() - start - report.list_s - report.solve_s
            report.unschedulable = list(result.unschedulable)
        elif pending:
            report.unschedulable = [p.name for p in pending]
        report.seconds = time.perf_counter() - start
        return report

    def _bind_one(self, item: tuple[str, str]) -> str | None:
        key, node = item
        namespace, name = key.split("/", 1)
        try:
            self.api.bind(namespace, name, node)
        except Exception as exc:  # reported per pod; the others still bind
            return str(exc)
        return None

    def _bind_all(self, todo: list[tuple[str, str]]) -> list[str | None]:
        """Bind every (pod key, node); the error of each, None when it bound."""
        if self.bind_workers == 1 or len(todo) < 2:
            return [self._bind_one(item) for item in todo]
        # An API that binds in bulk itself (KubernetesAPI: asyncio) beats threads.
        bulk = getattr(self.api, "bind_many", None)
        if bulk is not None:
            binds = [(*key.split("/", 1), node) for key, node in todo]
            errors: list[str | None] = bulk(binds, self.bind_workers)
            return errors
        with ThreadPoolExecutor(min(self.bind_workers, len(todo)),
                                thread_name_prefix="bind") as pool:
            return list(pool.map(self._bind_one, todo))

    def run_forever(self, interval_s: float, stop: threading.Event | None = None, *,
                    settle_s: float = 0.0, max_settle_s: float = 10.0,
                    heartbeat: Callable[[], None] = lambda: None) -> None:
        """Rounds every ``interval_s`` until ``stop``; ``heartbeat`` is called as each
        round starts (the liveness endpoint's clock, `schedulers.health`)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            heartbeat()
            try:
                if settle_s > 0:
                    self.settle(settle_s, max_settle_s)
                r = self.run_once()
                if r.pending:
                    log.info("round: %d pending, %d bound, %d failed, %d unschedulable "
                             "in %.3f s (list %.3f, solve %.3f, bind %.3f)", r.pending,
                             len(r.bound), len(r.failed), len(r.unschedulable), r.seconds,
                             r.list_s, r.solve_s, r.bind_s)
            except Exception as exc:  # keep scheduling through API hiccups
                log.warning("round failed: %s", exc)
            stop.wait(interval_s)
