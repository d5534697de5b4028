"""Score a pod only once the pods scored before it are bound: the extender's view catches
up with kube-scheduler's.

kube-scheduler counts a pod on its node the moment its scheduling cycle ends ("assumed"
in its cache) and binds it in a goroutine while the next cycle already runs. The
extender learns of the binding later: when that goroutine calls its bind verb
(``--bind``), or when its pod watch reports it. Measured on kwok
(bench/fidelity_extender_probe.py), half of the scoring calls in a burst of Deployments
missed a pod scored just before, and with ``--bind`` still one in six: NetMARKS then
scores against a layout kube-scheduler has already left behind, which its model (and
the paper's description) never does.

:class:`InFlight` remembers the pods this extender scored; before scoring the next one,
``settle`` waits (up to a bound) until each of them is in the cache, i.e. bound. A pod
that is not bound by then (its cycle failed, it was deleted) is forgotten, so one lost
pod costs one wait, never more.
"""

from __future__ import annotations

import asyncio
import time

from schedulers.extender.placements import Placements

__all__ = ["InFlight"]

# How often the wait looks at the cache: the pod watch fills it from another thread.
_POLL_S = 0.001


class InFlight:
    """Pods scored by this extender whose binding it has not seen yet.

    ``bound(key)`` is the cache's listener (called from the pod-watch thread too): a
    pod deleted right after its binding (the end of a redeployment) must not be waited
    for again.
    """

    def __init__(self, max_wait_s: float) -> None:
        if not max_wait_s >= 0:
            raise ValueError(f"the wait for earlier bindings must be >= 0 s, got {max_wait_s}")
        self.max_wait_s = max_wait_s
        self._pods: dict[str, None] = {}  # insertion-ordered set of pod keys
        self._bound: set[str] = set()  # of those, seen bound (set.add is atomic)
        self.waits = 0  # scoring calls that had to wait
        self.timeouts = 0  # pods given up on

    def __len__(self) -> int:
        return len(self._pods)

    def scored(self, key: str) -> None:
        """``key`` ("ns/name") was just scored: kube-scheduler will bind it next."""
        if self.max_wait_s > 0:
            self._pods[key] = None

    def bound(self, key: str) -> None:
        """The cache counted ``key`` on a node."""
        if key in self._pods:
            self._bound.add(key)

    async def settle(self, placements: Placements, key: str) -> float:
        """Wait until every pod scored before ``key`` has been bound, at most
        ``max_wait_s``; returns the seconds waited."""
        start = time.monotonic()
        self._pods.pop(key, None)  # scored again (a retry): do not wait for itself
        waited = False
        while self._pods:
            for pod in [p for p in self._pods if p in self._bound or p in placements]:
                del self._pods[pod]
                self._bound.discard(pod)
            if not self._pods:
                break
            if time.monotonic() - start >= self.max_wait_s:
                self.timeouts += len(self._pods)
                self._pods.clear()
                self._bound.clear()
                break
            waited = True
            await asyncio.sleep(_POLL_S)
        self.waits += waited
        return time.monotonic() - start
