"""Run a scenario under each scheduler: one deployment, then the phases under load while
events happen and the scheduler's rebalancer moves running pods.

Per scheduler, on a fresh data plane (nothing carries over from the previous one):

1. the scheduler places the whole economy with the warm-up's traffic (the first
   phase's order mix): the day-one layout;
2. each phase's open-loop load starts at the phase's nominal start time
   (``order_app.timeline``: every order recorded with its intended send time);
3. events (drain, add_node, degrade) fire at their times; a drain cordons the node
   and evicts its pods, which *the scheduler itself* places again (so the baseline
   moves pods only here);
4. every ``rebalance_interval_s`` the rebalancer (``schedulers.rebalancers``; none
   for kube_default) gets the traffic of its window, measured from the mesh's
   counters, and its moves run for real on the data plane (``MovesPods``).

Rebalance rounds and drains run one at a time (a lock), as tasks beside the clock, so
a slow move delays the next round, never the orders or the phase boundaries. A round
that comes due while the previous one still runs is skipped and says so.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.backends.base import Backend, MoveResult, MovesPods, MovesThroughApi
from harness.experiment import Reporter, traffic_from_delta
from harness.measure import telemetry_delta
from harness.scenario.world import World, WorldError
from order_app.timeline import OrderRecord, run_recorded_mix
from results.scenario import STATIC_SUFFIX, Event, Phase, Scenario
from settlers.client import ProducerClient, open_client

if TYPE_CHECKING:
    from schedulers import TrafficMatrix
    from schedulers.network import NodeNetwork
    from schedulers.rebalancers import Rebalancer
    from settlers.economy import Economy

__all__ = ["SchedulerRun", "phase_seed", "run_one"]

_ORDER_TIMEOUT_S = 15.0



def degraded(network: NodeNetwork | None, nodes: list[str], e: Event) -> NodeNetwork:
    """``network`` with every link touching ``e.node`` changed as the event says."""
    from schedulers.network import Link, NodeNetwork

    base = network or NodeNetwork.flat()

    def link(a: str, b: str) -> Link:
        old = base.link(a, b)
        if e.node not in (a, b):
            return old
        return Link(old.delay_ms if e.latency_ms is None else e.latency_ms,
                    old.bandwidth if e.bandwidth_mbps is None else e.bandwidth_mbps * 1e6 / 8)

    return NodeNetwork.build(nodes, link, f"{base.source}, {e.describe()}")


def phase_seed(run_seed: int, phase: int) -> int:
    """The seed of a phase's order schedule (tests replay the schedule with it)."""
    return run_seed * 1000 + phase

_GRACE_S = 5.0


@dataclass
class SchedulerRun:
    """One scheduler's scenario: what it needs and what it recorded."""

    scheduler: str
    scenario: Scenario
    backend: Backend
    economy: Economy
    traffic: TrafficMatrix | None
    seed: int                # the policy's (and rebalancer's) seed
    order_seed: int = 1      # the orders' schedule: the same under every scheduler (paired)
    options: Mapping[str, Any] = field(default_factory=dict)
    rebalance_options: Mapping[str, Any] = field(default_factory=dict)
    reporter: Reporter = field(default_factory=Reporter)
    # False: the same policy's day one, never rebalanced (its "-static" twin).
    rebalance: bool = True
    orders: list[OrderRecord] = field(default_factory=list)
    # The phase whose load sent each order (not its time: the last order of a phase can
    # be due a few ms after the boundary, the driver's lead).
    order_phases: list[str] = field(default_factory=list)
    migrations: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    traffic_rows: list[dict[str, Any]] = field(default_factory=list)
    placements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The name in the tables: the policy, or ``<policy>-static`` for its twin."""
        return self.scheduler if self.rebalance else f"{self.scheduler}{STATIC_SUFFIX}"

    def tables(self) -> dict[str, pd.DataFrame]:
        orders = pd.DataFrame([r.__dict__ for r in self.orders],
                              columns=["t_s", "item", "size", "latency_ms", "ok", "error"])
        orders.insert(0, "scheduler", self.label)
        orders.insert(1, "phase", pd.Series(self.order_phases, dtype=object))
        return {
            "orders": orders,
            "migrations": pd.DataFrame(self.migrations, columns=_MIGRATION_COLUMNS),
            "events": pd.DataFrame(self.events,
                                   columns=["scheduler", "phase", "t_s", "kind", "detail"]),
            "traffic": pd.DataFrame(self.traffic_rows, columns=_TRAFFIC_COLUMNS),
            "placements": pd.DataFrame(self.placements,
                                       columns=["scheduler", "t_s", "pod", "node"]),
        }

    def scenario_phase(self, t: float) -> str:
        for name, _start, end in self.scenario.boundaries():
            if t < end:
                return name
        return self.scenario.phases[-1].name


_MIGRATION_COLUMNS = ["scheduler", "phase", "pod", "new_pod", "workload", "src_node",
                      "dst_node", "strategy", "reason", "decided_s", "ready_s", "done_s",
                      "ok", "error"]
_TRAFFIC_COLUMNS = ["scheduler", "phase", "start_s", "end_s", "inter_node_bytes",
                    "intra_node_bytes", "bytes"]


async def run_one(run: SchedulerRun) -> None:
    """Deploy under ``run.scheduler``, run the scenario, fill ``run``'s records.

    On the local backend the Python model places day one; on kwok the real scheduler
    does (``MovesThroughApi.deploy``) and every move is an eviction and a rebind
    through the API before the emulated cluster follows."""
    from schedulers.rebalancers import rebalancer_for

    backend, scenario = run.backend, run.scenario
    placer: Any = backend.placer
    space = placer.space
    network = getattr(placer, "network", None)
    world = World(run.economy, space.nodes, space.pods, standby=scenario.standby_nodes)
    policy = world.policy(run.scheduler, traffic=run.traffic, seed=run.seed,
                          network=network, options=run.options)
    api = placer if isinstance(placer, MovesThroughApi) else None
    rebalancer = rebalancer_for(run.scheduler, network=network, seed=run.seed,
                                **dict(run.rebalance_options)) if run.rebalance else None
    if api is None:
        placement = world.deploy(policy)
    else:
        for node in scenario.standby_nodes:
            await api.cordon(node)
        placed = await api.deploy(run.scheduler, traffic=run.traffic, seed=run.seed)
        placement = world.adopt(placed.assignments)
    try:
        plane = await backend.planes.start(scenario.protocol, placement)
        try:
            if not isinstance(plane, MovesPods):
                raise RuntimeError(f"the {backend.name} backend's data plane cannot move "
                                   "running pods; scenarios run on the local and kwok backends")
            await _Timeline(run, world, policy, rebalancer, plane, api).run()
        finally:
            await plane.stop()
    finally:
        if api is not None:
            await api.undeploy()
            for node in scenario.standby_nodes:
                await api.cordon(node, on=False)


class _Timeline:
    def __init__(self, run: SchedulerRun, world: World, policy: Any,
                 rebalancer: Rebalancer | None, plane: Any, api: MovesThroughApi | None
                 ) -> None:
        self.run_ = run
        self.api = api
        self.world = world
        self.policy = policy
        self.rebalancer = rebalancer
        self.plane = plane
        self.lock = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()
        self.snapshots: list[tuple[float, pd.DataFrame]] = []
        self.mono0 = 0.0
        self.origin = 0.0
        self.current: tuple[str, float, pd.DataFrame] | None = None

    def now(self) -> float:
        return time.monotonic() - self.mono0

    def phase_at(self, t: float) -> str:
        return self.run_.scenario_phase(t)

    def event(self, kind: str, detail: str, t: float | None = None) -> None:
        t = self.now() if t is None else t
        self.run_.events.append({"scheduler": self.run_.label, "phase": self.phase_at(t),
                                 "t_s": round(t, 3), "kind": kind, "detail": detail})

    def record_placement(self, t: float) -> None:
        for pod, node in sorted(self.world.placement.items()):
            self.run_.placements.append({"scheduler": self.run_.label, "t_s": round(t, 3),
                                         "pod": pod, "node": node})

    async def run(self) -> None:
        run, scenario = self.run_, self.run_.scenario
        items = scenario.items()
        clients: dict[str, ProducerClient] = {
            i: open_client(self.plane.entry(i), scenario.protocol, timeout=_ORDER_TIMEOUT_S)
            for i in items}
        advance = run.reporter.stage(
            f"scenario {scenario.name} under {run.label}", math.ceil(scenario.duration_s))
        self.mono0, self.origin = time.monotonic(), time.perf_counter()
        self.snapshots.append((0.0, self.plane.traffic_snapshot()))
        self.record_placement(0.0)
        loads = [asyncio.create_task(self._phase_load(k, p, clients))
                 for k, p in enumerate(scenario.phases)]
        try:
            await self._clock(advance)
            for task in loads:
                await task
            for task in list(self.tasks):
                await task
        finally:
            for task in [*loads, *self.tasks]:
                task.cancel()
            await asyncio.gather(*loads, *self.tasks, return_exceptions=True)
            for client in clients.values():
                await client.close()

    async def _phase_load(self, k: int, phase: Phase,
                          clients: Mapping[str, ProducerClient]) -> None:
        start = self.run_.scenario.boundaries()[k][1]
        await asyncio.sleep(max(0.0, self.origin + start - time.perf_counter()))
        records = await run_recorded_mix(
            clients, phase.orders.items, phase.orders.sizes, rate=phase.orders.rate,
            duration_s=phase.duration_s, origin=self.origin, count=phase.orders.count,
            seed=phase_seed(self.run_.order_seed, k), timeout=_ORDER_TIMEOUT_S)
        self.run_.orders.extend(records)
        self.run_.order_phases.extend([phase.name] * len(records))

    async def _clock(self, advance: Callable[[int], None]) -> None:
        """Phase boundaries, events and rebalance rounds, in time order."""
        scenario = self.run_.scenario
        interval = scenario.rebalance_interval_s
        todo: list[tuple[float, int, str, Any]] = []
        for (name, start, _end), phase in zip(scenario.boundaries(), scenario.phases,
                                              strict=True):
            todo.append((start, 0, "phase", name))
            todo += [(start + e.at_s, 1, "event", e) for e in phase.events]
        if self.rebalancer is not None:
            k = 1
            while k * interval < scenario.duration_s:
                todo.append((k * interval, 2, "rebalance", None))
                k += 1
        todo.append((scenario.duration_s, 3, "end", None))
        todo.sort(key=lambda x: (x[0], x[1]))
        ticked = 0
        for at, _prio, kind, what in todo:
            while self.now() < at:
                await asyncio.sleep(min(1.0, at - self.now()))
                whole = min(int(self.now()), math.ceil(scenario.duration_s))
                if whole > ticked:
                    advance(whole - ticked)
                    ticked = whole
            if kind == "phase":
                self._phase_boundary(str(what), at)
            elif kind == "event":
                self._spawn(self._event(what))
            elif kind == "rebalance":
                if self.lock.locked():
                    self.event("rebalance", "skipped: the previous round is still moving pods")
                else:
                    self._spawn(self._rebalance())
            else:
                self._phase_boundary("", at)
        advance(max(0, math.ceil(scenario.duration_s) - ticked))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _phase_boundary(self, name: str, at: float) -> None:
        """Close the running phase's byte count; open ``name`` ("" at the end)."""
        snap = self.plane.traffic_snapshot()
        self.snapshots.append((at, snap))
        if self.current is not None:
            phase, start, before = self.current
            self._bytes_row(phase, start, at, before, snap)
        self.current = (name, at, snap) if name else None
        if name:
            self.event("phase", f"phase {name} starts", at)

    def _bytes_row(self, phase: str, start: float, end: float, before: pd.DataFrame,
                   after: pd.DataFrame) -> None:
        delta = telemetry_delta(before, after)
        inter = int(delta.loc[delta["src_node"] != delta["dst_node"], "bytes"].sum())
        total = int(delta["bytes"].sum())
        self.run_.traffic_rows.append({
            "scheduler": self.run_.label, "phase": phase, "start_s": start, "end_s": end,
            "inter_node_bytes": inter, "intra_node_bytes": total - inter, "bytes": total})

    # -- events ----------------------------------------------------------------------

    async def _event(self, e: Event) -> None:
        self.event(e.kind, e.describe())
        if e.kind == "degrade":
            await self.plane.degrade(e.node, latency_ms=e.latency_ms,
                                     bandwidth_mbps=e.bandwidth_mbps)
            # TraDE measures delays between nodes: its rebalancer sees the new ones.
            if self.rebalancer is not None and hasattr(self.rebalancer, "network"):
                self.rebalancer.network = degraded(self.rebalancer.network,
                                                   list(self.world.nodes), e)
        elif e.kind == "add_node":
            self.world.cordon(e.node, on=False)
            if self.api is not None:
                await self.api.cordon(e.node, on=False)
        else:
            async with self.lock:
                self.world.cordon(e.node)
                if self.api is not None:
                    await self.api.cordon(e.node)
                for pod in self.world.on_node(e.node):
                    try:
                        dst = await asyncio.to_thread(self.world.place_again, self.policy, pod)
                    except WorldError as exc:
                        self.event("drain", f"{pod} stays on {e.node}: {exc}")
                        continue
                    await self._move(pod, dst, "evict", "drain")

    # -- rebalancing -----------------------------------------------------------------

    async def _rebalance(self) -> None:
        assert self.rebalancer is not None
        async with self.lock:
            t = self.now()
            snap = self.plane.traffic_snapshot()
            self.snapshots.append((t, snap))
            window = float(self.rebalancer.window_s)
            # The oldest snapshot inside the window (a little slack: rounds come every
            # interval, a hair later each time).
            since, before = next((s, df) for s, df in self.snapshots if s >= t - window - 0.5)
            if t - since < 1.0:
                return
            delta = telemetry_delta(before, snap)
            traffic = traffic_from_delta(delta, t - since, time.time() - (t - since))
            started = time.perf_counter()
            moves = await asyncio.to_thread(self.rebalancer.plan, self.world.running(),
                                            self.world.node_list(), traffic)
            took = time.perf_counter() - started
            self.event("rebalance", f"{len(moves)} move(s) planned in {took * 1e3:.0f} ms "
                       f"from {t - since:.0f} s of traffic", t)
            for m in moves:
                if m.pod in self.world.placement and m.dst != self.world.placement[m.pod]:
                    await self._move(m.pod, m.dst, self.rebalancer.strategy, "rebalance")

    async def _move(self, pod: str, dst: str, strategy: str, reason: str) -> None:
        decided = self.now()
        src = self.world.placement[pod]
        new_pod = None
        if self.api is not None:
            # Through the API first (evict, rebind); the emulated pods follow it.
            new_pod, dst = await self.api.move(pod, dst)
        result: MoveResult = await self.plane.move(
            pod, dst, make_before_break=strategy == "make-before-break", grace_s=_GRACE_S,
            new_pod=new_pod)
        rel = self.mono0
        if result.ok:
            self.world.moved(pod, result.new_pod, dst)
        elif strategy != "make-before-break":
            # Evicted and the replacement never became ready: the pod is gone.
            self.world.placement.pop(pod, None)
        self.run_.migrations.append({
            "scheduler": self.run_.label, "phase": self.phase_at(decided), "pod": pod,
            "new_pod": result.new_pod, "workload": result.workload, "src_node": src,
            "dst_node": dst, "strategy": result.strategy, "reason": reason,
            "decided_s": round(decided, 3),
            "ready_s": math.nan if result.ready is None else round(result.ready - rel, 3),
            "done_s": round(result.done - rel, 3), "ok": result.ok, "error": result.error})
        self.record_placement(self.now())
