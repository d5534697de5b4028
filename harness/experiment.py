"""The experiment: warm-up, redeployments, sampling plan, measurement — each stage resumable.

Every stage first looks in the results directory for its output and reuses it, so
``--resume`` simply runs the experiment again: finished stages are read back, the
measurement stage skips every (layout, protocol) chunk whose part file exists.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd

from harness.backends.base import (
    Backend,
    DataPlane,
    DescribesTraffic,
    Placement,
    Placer,
    ReportsPodStatus,
)
from harness.backends.trafficinfo import describe_matrix
from harness.measure import (
    LOAD_RAMP_S,
    BackgroundLoad,
    Sweep,
    background_load,
    default_load,
    default_sweep,
    measure_layout,
    measure_layout_under_load,
    telemetry_delta,
)
from results.allocation import (
    PLAN_CAP,
    allocate,
    costs,
    pilot_layouts,
    spent_seconds,
    truncated_units,
    variance_components,
)
from results.config import ExperimentConfig
from results.layouts import layout_id, measurement_order, measurement_plan, plan_units
from results.manifest import MeasurementPlan
from results.store import ResultsStore, chunk_name
from schedulers.creation import join_order
from settlers.wire import WireProtocol

if TYPE_CHECKING:
    from schedulers import TrafficMatrix

__all__ = ["DataPlaneBroken", "Experiment", "Reporter", "traffic_from_delta"]

_T = TypeVar("_T")


class Reporter:
    """Progress hooks; the CLI plugs rich bars in, tests use the silent default."""

    def stage(self, name: str, total: int | None = None) -> Callable[[int], None]:
        return lambda n: None

    def note(self, message: str) -> None:
        return None


@dataclass
class _PlaneSlot:
    protocol: WireProtocol | None = None
    plane: DataPlane | None = None


class Experiment:
    def __init__(
        self,
        config: ExperimentConfig,
        store: ResultsStore,
        backend: Backend,
        reporter: Reporter | None = None,
        sweep: Sweep | None = None,
        load: BackgroundLoad | None = None,
        load_ramp_s: float = LOAD_RAMP_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._clock = clock  # the chunks' wall time, which a time budget spends
        self.store = store
        self.backend = backend
        self.reporter = reporter or Reporter()
        self._sweep = sweep
        self._load = load
        self._load_ramp_s = load_ramp_s
        self._items = config.item_list()
        self._slot = _PlaneSlot()

    async def run(self) -> None:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(self.backend.close)
            stack.push_async_callback(self._stop_plane)
            traffic = await self.warmup()
            placements = await self.redeploy(traffic)
            plan = self.plan(placements)
            await self.measure(plan)
        self.store.consolidate_telemetry()

    # -- stage 1: warm-up traffic -> traffic matrix ------------------------------

    async def warmup(self) -> TrafficMatrix | None:
        from schedulers import TrafficMatrix

        if self.store.has("traffic"):
            m = self.store.manifest()
            return _traffic_from_table(self.store.read_table("traffic"),
                                       m.warmup_traffic_source, m.warmup_since, m.warmup_until)
        protocol = self.config.protocols[0]
        rng = np.random.default_rng(self.config.seed)
        placer = self.backend.placer
        nodes = placer.node_names
        placement = {p: nodes[int(rng.integers(len(nodes)))] for p in placer.pod_names}

        async def work(plane: DataPlane) -> tuple[pd.DataFrame, float, float]:
            # t0 of the paper's F: the traffic averages over everything since it.
            before, started, t0 = plane.traffic_snapshot(), time.monotonic(), time.time()
            if self.config.load_in_traffic:
                # The stated option: NetMARKS learns from the warm-up with the largest
                # background load running (by default it learns without any).
                async with background_load(
                    self._load or default_load(), {i: plane.entry(i) for i in self._items},
                    protocol, self._items, self.config.sizes, rps=max(self.config.load),
                    count=self.config.count, seed=self.config.seed, ramp_s=0.0,
                ):
                    await self._warmup_orders(plane, protocol)
            else:
                await self._warmup_orders(plane, protocol)
            elapsed = time.monotonic() - started
            return telemetry_delta(before, plane.traffic_snapshot()), elapsed, t0

        delta, elapsed, t0 = await self._healthy(protocol, placement, "the warm-up", work)
        plane = await self._plane(protocol, placement)
        traffic, source = None, "none"
        if plane.prometheus_url and not delta.empty:
            traffic, source = await _from_prometheus(plane.prometheus_url, t0)
        if traffic is None and not delta.empty:
            traffic = traffic_from_delta(delta, elapsed, t0)
            source = (f"mesh counters (direct scrape; {source}), average over the warm-up "
                      f"since {_iso(t0)} ({elapsed:.0f} s)")
        if traffic is None:
            source = "none (no warm-up traffic: NetMARKS abstains)"
            traffic = TrafficMatrix.from_dataframe(_empty_traffic(), since=t0,
                                                   until=t0 + elapsed)
        self.store.write_table("warmup_telemetry", delta)
        self.store.write_table("traffic", _traffic_table(traffic))
        self.store.update_manifest(
            traffic_source=source, warmup_seconds=round(elapsed, 3), warmup_placement=placement,
            warmup_since=t0, warmup_until=traffic.until, warmup_traffic_source=traffic.source,
        )
        self.reporter.note(f"traffic matrix from {source} after {elapsed:.1f} s of warm-up")
        return traffic

    async def _warmup_orders(self, plane: DataPlane, protocol: WireProtocol) -> None:
        # Rounds of orders until the minimum duration has passed: Prometheus scrapes
        # once a second and increase() needs several samples of each new series.
        if self.config.warmup_orders == 0:
            return
        advance = self.reporter.stage("warm-up traffic", None)
        deadline = time.monotonic() + self.config.warmup_seconds
        while True:
            await (self._sweep or default_sweep(plane))(
                {i: plane.entry(i) for i in self._items}, protocol, self._items,
                list(self.config.sizes), count=self.config.count,
                repeat=self.config.warmup_orders, warmup=0, progress=False,
            )
            if time.monotonic() >= deadline:
                break
        advance(1)

    # -- stage 2: redeployments --------------------------------------------------

    async def redeploy(self, traffic: TrafficMatrix | None) -> pd.DataFrame:
        if self.store.has("placements"):
            return self.store.read_table("placements")
        rows: list[dict[str, object]] = []
        used: dict[str, str] = {}  # scheduler -> the traffic it placed with, in words
        # One order per redeployment index, the same under every scheduler (paired).
        order = self.config.creation_order()
        for index, scheduler in enumerate(self.config.schedulers):
            advance = self.reporter.stage(f"redeploy under {scheduler}", self.config.deployments)
            placements = await self.backend.placer.place(
                scheduler, self.config.deployments,
                traffic=traffic, seed=self.config.seed * 1000 + index, advance=advance,
                order=order,
            )
            rows.extend(self._placement_rows(p) for p in placements)
            used[scheduler] = scheduler_traffic(self.backend.placer, scheduler, traffic)
            self.reporter.note(f"{scheduler} traffic: {used[scheduler]}")
        frame = pd.DataFrame(rows)
        self.store.update_manifest(scheduler_traffic=used)
        self.store.write_table("placements", frame)
        return frame

    def _placement_rows(self, placement: Placement) -> dict[str, object]:
        if placement.unschedulable:
            raise RuntimeError(
                f"{placement.scheduler} left pods unschedulable in redeployment "
                f"{placement.deployment}: {', '.join(placement.unschedulable)}; give the "
                "nodes more capacity (--nodes) or the pods smaller requests (economy file), "
                "or, when the policy's own filter refused every node (diktyo on nodes "
                "without zone labels, docs/schedulers.md), a --topology with zones"
            )
        canonical = self.backend.placer.canonical(placement.assignments)
        return {
            "scheduler": placement.scheduler,
            "deployment": placement.deployment,
            "layout_id": layout_id(canonical),
            "canonical": canonical,
            "seconds": placement.seconds,
            "assignments": json.dumps(dict(sorted(placement.assignments.items()))),
            # The Deployments in the order this redeployment created them.
            "creation_order": join_order(placement.creation_order),
        }

    # -- stage 3: which layouts to measure --------------------------------------------

    def plan(self, placements: pd.DataFrame) -> MeasurementPlan:
        """Choose the units and layouts to measure; record them (``units.parquet``,
        ``layouts.parquet``'s measure_rank, the manifest's ``plan``) and return the plan."""
        if self.store.has("units") and self.store.has("layouts"):
            recorded = self.store.manifest().plan
            if recorded is not None:
                return recorded
            return self._record_plan(self.store.read_table("units"))  # a run from before it
        by_scheduler = {
            s: list(g.sort_values("deployment")["layout_id"])
            for s, g in placements.groupby("scheduler", sort=False)
        }
        units = plan_units(by_scheduler, self._layout_budget(), self.config.seed)
        firsts = placements.drop_duplicates("layout_id")
        counts = placements.pivot_table(
            index="layout_id", columns="scheduler", values="deployment", aggfunc="count",
            fill_value=0,
        )
        layouts = firsts[["layout_id", "canonical", "assignments"]].merge(
            counts.add_prefix("count_").reset_index(), on="layout_id"
        )
        measured = measurement_order(units)
        rank = {lid: i for i, lid in enumerate(measured)}
        layouts["measure_rank"] = layouts["layout_id"].map(rank).astype("Int64")
        self.store.write_table("layouts", layouts)
        self.store.write_table("units", units)
        return self._record_plan(units)

    def _layout_budget(self) -> int:
        # With a time budget the plan offers many layouts; the time picks how many.
        return PLAN_CAP if self.config.time_budget is not None else self.config.layout_budget

    def _record_plan(self, units: pd.DataFrame) -> MeasurementPlan:
        plan = measurement_plan(units, layout_budget=self._layout_budget(),
                                seed=self.config.seed)
        self.store.update_manifest(plan=plan)
        return plan

    # -- stage 4: measurement ---------------------------------------------------------

    async def measure(self, plan: MeasurementPlan) -> None:
        """Every planned layout at the configured repetitions, or with a time budget
        (``config.time_budget``): a pilot, then as many layouts at as many orders per
        layout as the time buys (``results.allocation``)."""
        if self.config.time_budget is not None:
            await self._measure_budgeted(plan)
            return
        loads = len(self.config.load) or 1
        advance = self.reporter.stage(
            "measure layouts" + (" under load" if self.config.load else ""),
            plan.chunks(self.config.protocols) * loads)
        await self._measure_pass(plan.layouts, self.config.repetitions,
                                 self.config.protocols, advance)

    async def _measure_budgeted(self, plan: MeasurementPlan) -> None:
        budget = float(self.config.time_budget or 0.0)
        protocols, loads = list(self.config.protocols), len(self.config.load) or 1
        order = plan.layouts
        pilot = order[:pilot_layouts(len(self.config.schedulers), len(order))]
        m0 = max(2, self.config.repetitions)  # the within-layout spread needs two orders
        allocation = self.store.manifest().allocation
        if allocation is None:
            advance = self.reporter.stage("measure the pilot layouts",
                                          len(pilot) * len(protocols) * loads)
            await self._measure_pass(pilot, m0, protocols, advance)
            samples = self.store.samples()
            spent = spent_seconds(samples)
            allocation = allocate(
                variance_components(samples, pilot), costs(samples, pilot),
                remaining_s=budget - spent, pilot=len(pilot), pilot_repetitions=m0,
                available=len(order), budget_s=budget, pilot_seconds=spent)
            self.store.update_manifest(allocation=allocation)
            self.reporter.note(f"time budget {budget:.0f} s: {allocation.why}; measuring "
                               f"{allocation.layouts} layouts, {allocation.repetitions} "
                               "orders per cell after the pilot")
        rest = order[len(pilot):allocation.layouts]
        # The plane is on the last protocol after the pilot: start there. Each protocol
        # gets its share of the time left, so a slow pass cannot starve the next one.
        protocols.reverse()
        advance = self.reporter.stage("measure layouts (time budget)",
                                      len(rest) * len(protocols) * loads)
        start = spent = spent_seconds(self.store.samples())
        for k, protocol in enumerate(protocols):
            share = start + max(0.0, budget - start) * (k + 1) / len(protocols)
            # 5 % slack: the last layout that fits by the estimate may run a bit long.
            spent = await self._measure_pass(rest, allocation.repetitions, [protocol],
                                             advance, until=share * 1.05, spent=spent)
        self._record_measured(order)

    def _record_measured(self, order: list[str]) -> None:
        """Cut each scheduler's units to the layouts measured in every protocol (and
        load) and record the plan that the estimates then stand for."""
        done = self.store.done_chunks()
        loads: list[float | None] = list(self.config.load) or [None]
        measured = [lid for lid in order
                    if all(chunk_name(lid, p, x) in done
                           for p in self.config.protocols for x in loads)]
        units = truncated_units(self.store.read_table("units"), measured)
        self.store.write_table("units", units)
        self._record_plan(units)

    async def _measure_pass(
        self, layouts: list[str], repetitions: int, protocols: list[WireProtocol],
        advance: Callable[[int], None], until: float | None = None, spent: float = 0.0,
    ) -> float:
        """Measure each (layout, protocol[, load]) chunk not yet done, protocol by
        protocol (one data plane each); with ``until``, stop before a layout once the
        measurement time (``spent`` so far plus this pass's chunks) has reached it.
        Returns the measurement time spent so far."""
        table = self.store.read_table("layouts").set_index("layout_id")
        loads: list[float | None] = list(self.config.load) or [None]
        names = [chunk_name(lid, p, x) for p in protocols for lid in layouts for x in loads]
        advance(sum(self.store.chunk_done(n) for n in names))
        for protocol in protocols:
            for lid in layouts:
                pending = [x for x in loads
                           if not self.store.chunk_done(chunk_name(lid, protocol, x))]
                if not pending:
                    continue
                if until is not None and spent >= until:
                    self.reporter.note(f"{protocol}: the time budget is spent; "
                                       f"stopping before layout {lid}")
                    break
                placement = json.loads(str(table.loc[lid, "assignments"]))
                for rps in pending:
                    spent += await self._measure_chunk(lid, protocol, rps, placement,
                                                       repetitions)
                    advance(1)
        return spent

    async def _measure_chunk(self, lid: str, protocol: WireProtocol, rps: float | None,
                             placement: dict[str, str], repetitions: int) -> float:
        """One chunk, stored with its wall time; returns that time (seconds)."""
        name = chunk_name(lid, protocol, rps)
        started = self._clock()
        load: pd.DataFrame | None = None
        if rps is None:

            async def plain(plane: DataPlane) -> tuple[pd.DataFrame, pd.DataFrame]:
                return await measure_layout(
                    plane, placement, layout_id=lid, protocol=protocol, items=self._items,
                    sizes=self.config.sizes, count=self.config.count, repeat=repetitions,
                    sweep=self._sweep,
                )

            samples, telemetry = await self._healthy(
                protocol, placement, f"layout {lid} ({protocol})", plain)
        else:

            async def loaded(plane: DataPlane
                             ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
                return await measure_layout_under_load(
                    plane, placement, layout_id=lid, protocol=protocol, items=self._items,
                    sizes=self.config.sizes, count=self.config.count, repeat=repetitions,
                    load_rps=rps, sweep=self._sweep, load=self._load,
                    load_seed=_chunk_seed(self.config.seed, name), ramp_s=self._load_ramp_s,
                )

            samples, telemetry, load = await self._healthy(
                protocol, placement, f"layout {lid} ({protocol}, load {rps:g}/s)", loaded)
        seconds = self._clock() - started
        # The chunk's wall time (data-plane restarts included): what a time budget spends.
        samples["chunk_seconds"] = seconds
        self.store.write_chunk(name, samples, telemetry, load)
        return seconds

    async def _healthy(
        self,
        protocol: WireProtocol,
        placement: Mapping[str, str],
        what: str,
        work: Callable[[DataPlane], Awaitable[_T]],
    ) -> _T:
        """Run ``work`` on the data plane; if it fails or a pod died meanwhile, start a
        fresh data plane and run it once more. Measurements from a broken cluster are
        never stored: a crashed pod would turn a layout's orders into errors."""
        for attempt in (1, 2):
            plane = await self._plane(protocol, placement)
            problem: str | None
            try:
                result = await work(plane)
            except Exception as exc:
                if attempt == 2:
                    raise
                problem = f"{type(exc).__name__}: {exc}"
            else:
                problem = _plane_problem(plane)
                if problem is None:
                    return result
                if attempt == 2:
                    raise DataPlaneBroken(f"{what}: {problem}, also after a restart")
            self.reporter.note(f"{what}: {problem}; restarting the data plane, measuring again")
            await self._stop_plane()
        raise AssertionError("unreachable")

    # -- the data plane, one protocol at a time ----------------------------------------

    async def _plane(self, protocol: WireProtocol, placement: Mapping[str, str]) -> DataPlane:
        if self._slot.plane is not None and self._slot.protocol == protocol:
            return self._slot.plane
        await self._stop_plane()
        self.reporter.note(f"starting the {self.backend.name} data plane ({protocol})")
        self._slot.plane = await self.backend.planes.start(protocol, placement)
        self._slot.protocol = protocol
        self._record_capacity(self._slot.plane)
        return self._slot.plane

    def _record_capacity(self, plane: DataPlane) -> None:
        # Only when node capacity is on: enforced or not (and why) goes to the manifest,
        # whose first report lines say it.
        status = getattr(plane, "capacity", None)
        if status is None:
            return
        self.store.update_manifest(capacity=status.to_json())
        self.reporter.note(status.line())

    async def _stop_plane(self) -> None:
        plane, self._slot.plane = self._slot.plane, None
        if plane is not None:
            await plane.stop()


def _chunk_seed(seed: int, chunk: str) -> int:
    # Each chunk its own (reproducible) Poisson schedule: with one schedule for all, a
    # lucky draw in the first seconds would repeat in every chunk.
    import zlib

    return seed * 1_000_003 + zlib.crc32(chunk.encode())


class DataPlaneBroken(RuntimeError):
    """The data plane kept failing (e.g. pods crashing); the message says how."""


def _plane_problem(plane: DataPlane) -> str | None:
    # Only data planes that can tell (the emulated cluster) are checked.
    if not isinstance(plane, ReportsPodStatus):
        return None
    broken = {pod: state for pod, state in plane.pod_status().items() if state != "running"}
    if not broken:
        return None
    return "pods not running: " + ", ".join(f"{p} {s}" for p, s in sorted(broken.items()))


def _empty_traffic() -> pd.DataFrame:
    return pd.DataFrame({"source": [], "destination": [], "bytes_per_s": []})


def _iso(unix_s: float) -> str:
    from schedulers.promtraffic import iso_time

    return iso_time(unix_s)


def traffic_from_delta(delta: pd.DataFrame, seconds: float, t0: float) -> TrafficMatrix:
    from schedulers import TrafficMatrix

    per_pair = delta.groupby(["source_workload", "destination_workload"], as_index=False)[
        "bytes"
    ].sum()
    frame = pd.DataFrame(
        {
            "source": per_pair["source_workload"],
            "destination": per_pair["destination_workload"],
            "bytes_per_s": per_pair["bytes"] / max(seconds, 1e-3),
        }
    )
    return TrafficMatrix.from_dataframe(frame, source="mesh counters", since=t0,
                                        until=t0 + seconds)


def _traffic_table(traffic: TrafficMatrix) -> pd.DataFrame:
    return traffic.to_dataframe()


def _traffic_from_table(frame: pd.DataFrame, source: str | None = None,
                        since: float | None = None, until: float | None = None
                        ) -> TrafficMatrix:
    from schedulers import TrafficMatrix

    return TrafficMatrix.from_dataframe(frame, source=source or "the warm-up's traffic table",
                                        since=since, until=until)


async def _from_prometheus(url: str, t0: float) -> tuple[TrafficMatrix | None, str]:
    """NetMARKS' own PromQL, the average since the warm-up's start t0 (the paper's F);
    (None, why) if it fails."""
    from schedulers import TrafficError, TrafficMatrix
    from schedulers.promtraffic import Interval

    # Let Prometheus scrape the final counters (1 s interval) before asking; on a busy
    # machine scrapes can lag, so ask again a few times before falling back.
    waited, why = 0.0, ""
    for pause in (2.5, 2.5, 5.0):
        await asyncio.sleep(pause)
        waited += pause
        try:
            traffic = await asyncio.to_thread(TrafficMatrix.from_prometheus, url,
                                              Interval(since=t0))
        except TrafficError as exc:
            why = f"Prometheus failed: {exc}"
            continue
        if traffic:
            seconds = (traffic.until or t0) - t0
            return traffic, f"Prometheus ({traffic.source}, {seconds:.0f} s)"
        why = f"Prometheus had no samples since the warm-up's start after {waited:.0f} s"
    return None, why


def scheduler_traffic(placer: Placer, scheduler: str, traffic: TrafficMatrix | None) -> str:
    """What traffic ``scheduler`` placed with under ``placer``, in words, for the report.

    Placers that run schedulers of their own say how they fed them
    (`DescribesTraffic`); otherwise the Python models got the warm-up's matrix.
    """
    from schedulers.registry import uses_traffic

    if isinstance(placer, DescribesTraffic):
        return placer.traffic_description(scheduler, traffic)
    if not uses_traffic(scheduler):
        return "none (traffic-blind)"
    return f"Python model; the warm-up's traffic matrix: {describe_matrix(traffic)}"
