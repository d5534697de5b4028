"""A model backend for unit tests of the experiment loop and the analysis: no processes.

It is the seam the real backends plug into (a placer and a data-plane factory, both
`ModelCluster`; ``ModelCluster.backend()`` composes them), filled with a small analytic model:
placements come from a seeded random spread (``kube_default``, ``random``) or a
chain-grouping heuristic (anything else), and an order's latency grows with the
inter-node hops of its trace and its size. Every number it produces follows from the
placement, so tests can check that the harness measures and aggregates correctly,
not that the model is realistic. Real runs never use this module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.backends.base import TELEMETRY_KEYS, Backend, DataPlane, Placement
from order_app.background import LoadSummary
from results.manifest import BackendDescription
from schedulers.creation import FILE_ORDER, CreationOrder
from settlers.economy import Economy
from settlers.trace import ORDER_CALLER, Hop, encode_trace
from settlers.wire import WireProtocol

__all__ = ["MODEL_DESCRIPTION", "ModelCluster", "ModelPlane"]

MODEL_DESCRIPTION = BackendDescription(
    name="model", places="a seeded analytic model (tests only)", measures="the same model")

_HOP_MS = 2.0          # added per inter-node transfer
_MS_PER_MIB = 40.0     # added per MiB crossing nodes
# Background load: each order/s adds this much, times the busiest node's share of the
# pods (packing hurts under load); the model serves at most _LOAD_CAPACITY orders/s.
_LOAD_MS_PER_RPS = 0.5
_LOAD_CAPACITY = 100.0


class ModelPlane:
    """In-memory DataPlane: a placement and cumulative byte counters."""

    def __init__(self, nodes: list[str], placement: Mapping[str, str]) -> None:
        self.node_names = nodes
        self.placement = dict(placement)
        self.prometheus_url: str | None = None
        self.counters: dict[tuple[str, str, str, str], int] = {}
        self.stopped = False
        self.crashed: dict[str, str] = {}  # pod -> state; tests set it to fake a crash

    async def relayout(self, placement: Mapping[str, str]) -> None:
        self.placement.update(placement)

    def entry(self, item: str) -> str:
        return f"model:{item}"

    def pod_status(self) -> dict[str, str]:
        return {pod: self.crashed.get(pod, "running") for pod in self.placement}

    def traffic_snapshot(self) -> pd.DataFrame:
        rows = [(*k, v) for k, v in sorted(self.counters.items())]
        return pd.DataFrame(rows, columns=[*TELEMETRY_KEYS, "bytes"])

    async def stop(self) -> None:
        self.stopped = True


class ModelCluster:
    """Placer and data-plane factory at once: both halves read one model."""

    def __init__(self, economy: Economy, nodes: int, *, noise_ms: float = 0.2,
                 seed: int = 0) -> None:
        self.economy = economy
        self._nodes = [f"node-{i + 1}" for i in range(nodes)]
        self._pods = [f"{i.name}-{r}" for i in economy for r in range(i.replicas)]
        self.noise_ms = noise_ms
        self.rng = np.random.default_rng(seed)
        self.plane: ModelPlane | None = None
        self.planes_started = 0
        self.load_rps = 0.0      # the background load running now (background_load)
        self.loads_run: list[float] = []

    @property
    def node_names(self) -> list[str]:
        return list(self._nodes)

    @property
    def pod_names(self) -> list[str]:
        return list(self._pods)

    def canonical(self, assignments: Mapping[str, str]) -> str:
        groups = sorted(
            ",".join(sorted(p for p, n in assignments.items() if n == node))
            for node in self._nodes
        )
        return "|".join(groups)

    async def place(self, scheduler: str, deployments: int, *, traffic: Any, seed: int,
                    advance: Callable[[int], None] = lambda n: None,
                    order: CreationOrder = FILE_ORDER) -> list[Placement]:
        # The model ignores the creation order (its draws stay those of before --order)
        # and records it, as every placer does.
        rng = np.random.default_rng(seed)
        workloads = [item.name for item in self.economy]
        out = []
        for d in range(deployments):
            if scheduler in ("kube_default", "random"):
                assignments = {p: self._nodes[int(rng.integers(len(self._nodes)))]
                               for p in self._pods}
            else:
                assignments = self._grouped(rng)
            out.append(Placement(scheduler, d, assignments, seconds=1e-3,
                                 creation_order=order.for_deployment(d, workloads)))
            advance(1)
        return out

    def _grouped(self, rng: np.random.Generator) -> dict[str, str]:
        # Each pod joins the node of its first input (a chain stays together), except
        # with a small probability, so the scheduler has a few distinct layouts.
        out: dict[str, str] = {}
        for item in self.economy:
            inputs = list(item.inputs)
            for r in range(item.replicas):
                pod = f"{item.name}-{r}"
                if inputs and rng.random() > 0.1:
                    out[pod] = out[f"{inputs[0]}-0"]
                else:
                    out[pod] = self._nodes[len(out) % len(self._nodes)]
        return out

    def backend(self) -> Backend:
        return Backend(MODEL_DESCRIPTION, placer=self, planes=self)

    async def start(self, protocol: WireProtocol, placement: Mapping[str, str]) -> DataPlane:
        self.plane = ModelPlane(self.node_names, placement)
        self.planes_started += 1
        return self.plane

    async def close(self) -> None:
        return None

    # -- the model sweep ----------------------------------------------------------------

    async def sweep(self, targets: Mapping[str, str], protocol: WireProtocol,
                    items: Sequence[str], sizes: Sequence[int], *, count: int, repeat: int,
                    warmup: int, progress: bool) -> pd.DataFrame:
        assert self.plane is not None, "start a data plane first"
        rows = []
        for item in items:
            for size in sizes:
                for _ in range(warmup):
                    self._order(item, size, count)
                for rep in range(repeat):
                    latency, trace = self._order(item, size, count)
                    rows.append({
                        "item": item, "size": size, "protocol": protocol, "count": count,
                        "repeat": rep, "latency_ms": latency, "ok": True, "error": "",
                        "payload_bytes": size * count, "hops": len(trace),
                        "pods": len({h.pod for h in trace}), "trace": encode_trace(trace),
                    })
        return pd.DataFrame(rows)

    async def background_load(self, targets: Mapping[str, str], protocol: WireProtocol,
                              items: Sequence[str], sizes: Sequence[int], *, rps: float,
                              count: int, stop: asyncio.Event, seed: int) -> LoadSummary:
        """The model's background load: while it runs, orders slow down with it."""
        self.load_rps = rps
        self.loads_run.append(rps)
        try:
            await stop.wait()
        finally:
            self.load_rps = 0.0
        achieved = min(rps, _LOAD_CAPACITY)
        return LoadSummary(offered_rps=rps, achieved_rps=achieved, scheduled_rps=rps,
                           seconds=1.0,
                           sent=int(rps), ok=int(achieved), p50_ms=1.0, p99_ms=2.0,
                           mean_ms=1.2)

    def _load_ms(self) -> float:
        assert self.plane is not None
        place = self.plane.placement
        if not self.load_rps or not place:
            return 0.0
        busiest = max(list(place.values()).count(n) for n in set(place.values()))
        return _LOAD_MS_PER_RPS * min(self.load_rps, _LOAD_CAPACITY) * busiest / len(place)

    def _order(self, item: str, size: int, count: int) -> tuple[float, list[Hop]]:
        assert self.plane is not None
        place = self.plane.placement
        counters = self.plane.counters
        trace: list[Hop] = []
        nbytes = size * count

        def visit(name: str, caller: str) -> None:
            pod = f"{name}-0"
            trace.append(Hop(name, pod, caller, nbytes))
            if caller != ORDER_CALLER:
                key = (caller.rsplit("-", 1)[0], name, place[caller], place[pod])
                counters[key] = counters.get(key, 0) + nbytes + 200
            for src in self.economy[name].inputs:
                visit(src, pod)

        visit(item, ORDER_CALLER)
        inter = [h for h in trace if h.caller and place[h.caller] != place[h.pod]]
        latency = 1.0 + len(inter) * (_HOP_MS + _MS_PER_MIB * nbytes / 2**20)
        latency += self._load_ms()
        latency += abs(float(self.rng.normal(0, self.noise_ms)))
        return latency, trace

    def expected_latency(self, item: str, size: int, placement: Mapping[str, str]) -> float:
        """The model's noise-free latency (tests compare the harness's estimate with it)."""
        saved, self.plane = self.plane, ModelPlane(self.node_names, placement)
        noise, self.noise_ms = self.noise_ms, 0.0
        try:
            latency, _ = self._order(item, size, 1)
        finally:
            self.plane, self.noise_ms = saved, noise
        return latency
