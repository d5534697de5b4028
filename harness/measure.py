"""Measuring one layout: orders through the data plane, hops from traces, bytes from the mesh.

Inter-node *transfers* are counted from each order's trace with the layout's placement
(``settlers.trace.inter_node_hops``): exact per order. Inter-node *bytes* come from the
mesh's own counters (the data plane's ``traffic_snapshot``), differenced over the
chunk, so they include everything the mesh carried, as Istio's telemetry would.
The traces' byte counts are kept beside them as a cross-check.

With a background load (``--load``), the load starts after the relayout, runs for a
short ramp, keeps running while the orders are measured and stops after them; the
orders' rows record its offered and achieved rate, and the chunk's mesh bytes then
include the background's traffic (the counters cannot tell orders apart).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from harness.backends.base import TELEMETRY_KEYS, DataPlane, SweepsInCluster
from settlers.trace import ORDER_CALLER, decode_trace
from settlers.wire import WireProtocol

if TYPE_CHECKING:
    from order_app.background import LoadSummary

__all__ = [
    "LOAD_RAMP_S",
    "BackgroundLoad",
    "LoadResult",
    "Sweep",
    "background_load",
    "default_load",
    "default_sweep",
    "hop_counts",
    "measure_layout",
    "measure_layout_under_load",
    "telemetry_delta",
]

# The background load runs this long before the measured orders start, so they meet
# a load that has reached its rate (queues filled), not its first few orders.
LOAD_RAMP_S = 1.0


class Sweep(Protocol):
    """The shape of ``order_app.run_sweep`` (the seam unit tests fill with a model)."""

    def __call__(
        self, targets: Mapping[str, str], protocol: WireProtocol, items: Sequence[str],
        sizes: Sequence[int], *, count: int, repeat: int, warmup: int, progress: bool,
    ) -> Awaitable[pd.DataFrame]: ...


def default_sweep(plane: DataPlane | None = None) -> Sweep:
    """The data plane's own sweep if it has one (a real cluster runs the order app as a
    Job inside, where its Service names resolve), else ``order_app.run_sweep``."""
    if isinstance(plane, SweepsInCluster):
        own: Sweep = plane.run_sweep
        return own
    from order_app import run_sweep

    sweep: Sweep = run_sweep
    return sweep


class BackgroundLoad(Protocol):
    """The shape of ``order_app.run_background_load`` (unit tests fill it with a model)."""

    def __call__(
        self, targets: Mapping[str, str], protocol: WireProtocol, items: Sequence[str],
        sizes: Sequence[int], *, rps: float, count: int, stop: asyncio.Event, seed: int,
    ) -> Awaitable[LoadSummary]: ...


def default_load() -> BackgroundLoad:
    """The order app's open-loop background load, run in this process."""
    from order_app.background import run_background_load

    load: BackgroundLoad = run_background_load
    return load


@dataclass
class LoadResult:
    """Filled when the background load has stopped."""

    summary: LoadSummary | None = field(default=None)


@asynccontextmanager
async def background_load(
    load: BackgroundLoad, targets: Mapping[str, str], protocol: WireProtocol,
    items: Sequence[str], sizes: Sequence[int], *, rps: float, count: int, seed: int,
    ramp_s: float = LOAD_RAMP_S,
) -> AsyncIterator[LoadResult]:
    """Run ``load`` at ``rps`` around the body (after a ramp when ``rps`` > 0); the
    result holds its summary after the block. A failing load fails the block."""
    stop = asyncio.Event()
    task = asyncio.ensure_future(load(targets, protocol, list(items), list(sizes), rps=rps,
                                      count=count, stop=stop, seed=seed))
    result = LoadResult()
    try:
        # At least one turn of the loop: the load has started before the body's orders.
        done, _ = await asyncio.wait({task}, timeout=ramp_s if rps > 0 else 0.0)
        if done:  # it ended before it was stopped: it failed
            task.result()
        yield result
    except BaseException:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    stop.set()
    result.summary = await task


async def measure_layout(
    plane: DataPlane,
    placement: Mapping[str, str],
    *,
    layout_id: str,
    protocol: WireProtocol,
    items: Sequence[str],
    sizes: Sequence[int],
    count: int,
    repeat: int,
    warmup: int = 1,
    sweep: Sweep | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Relayout, order every item x size ``repeat`` times; return (samples, telemetry)."""
    await plane.relayout(placement)
    targets = {item: plane.entry(item) for item in items}
    samples, telemetry = await _sweep_with_telemetry(
        plane, sweep, targets, protocol, items, sizes, count=count, repeat=repeat,
        warmup=warmup)
    samples = annotate_samples(samples, placement, layout_id=layout_id, protocol=protocol)
    return samples, _label(telemetry, layout_id, protocol)


async def _sweep_with_telemetry(
    plane: DataPlane, sweep: Sweep | None, targets: Mapping[str, str], protocol: WireProtocol,
    items: Sequence[str], sizes: Sequence[int], *, count: int, repeat: int, warmup: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sweep's raw rows, and the mesh's byte counters differenced around it."""
    run_sweep = sweep or default_sweep(plane)
    before = plane.traffic_snapshot()
    samples = await run_sweep(
        targets, protocol, list(items), list(sizes),
        count=count, repeat=repeat, warmup=warmup, progress=False,
    )
    return samples, telemetry_delta(before, plane.traffic_snapshot())


def _label(frame: pd.DataFrame, layout_id: str, protocol: WireProtocol,
           load_rps: float | None = None) -> pd.DataFrame:
    """The chunk's key columns first: layout, protocol and (under load) the offered rate."""
    frame.insert(0, "layout_id", layout_id)
    frame.insert(1, "protocol", protocol)
    if load_rps is not None:
        frame.insert(2, "load_rps", float(load_rps))
    return frame


async def measure_layout_under_load(
    plane: DataPlane,
    placement: Mapping[str, str],
    *,
    layout_id: str,
    protocol: WireProtocol,
    items: Sequence[str],
    sizes: Sequence[int],
    count: int,
    repeat: int,
    load_rps: float,
    warmup: int = 1,
    sweep: Sweep | None = None,
    load: BackgroundLoad | None = None,
    load_seed: int = 0,
    ramp_s: float = LOAD_RAMP_S,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """:func:`measure_layout` with the background load at ``load_rps`` (0: none) around
    the measured orders; returns (samples, telemetry, the load's one-row summary).

    Every sample row records the offered and achieved background rate (``load_rps``,
    ``load_achieved_rps``), the telemetry its offered rate (``load_rps``).
    """
    await plane.relayout(placement)
    targets = {item: plane.entry(item) for item in items}
    async with background_load(load or default_load(), targets, protocol, items, sizes,
                               rps=load_rps, count=count, seed=load_seed,
                               ramp_s=ramp_s) as running:
        samples, telemetry = await _sweep_with_telemetry(
            plane, sweep, targets, protocol, items, sizes, count=count, repeat=repeat,
            warmup=warmup)
    assert running.summary is not None
    summary = _label(pd.DataFrame([running.summary.to_row()]), layout_id, protocol, load_rps)
    samples = annotate_samples(samples, placement, layout_id=layout_id, protocol=protocol)
    samples["load_rps"] = float(load_rps)
    samples["load_achieved_rps"] = float(running.summary.achieved_rps)
    return samples, _label(telemetry, layout_id, protocol, load_rps), summary


def annotate_samples(
    samples: pd.DataFrame, placement: Mapping[str, str], *, layout_id: str, protocol: WireProtocol
) -> pd.DataFrame:
    out = samples.copy()
    out.insert(0, "layout_id", layout_id)
    out["protocol"] = protocol
    out["seq"] = range(len(out))
    counts = [hop_counts(str(t) if t is not None else "", placement) for t in out["trace"]]
    for key in ("transfers", "inter_node_transfers", "transfer_bytes", "inter_node_bytes"):
        out[key] = [c[key] for c in counts]
    return out


def hop_counts(trace: str, placement: Mapping[str, str]) -> dict[str, float]:
    """Transfers (hops between pods, not the order's own entry) and how many crossed nodes.

    NaN when the trace is missing (a failed order) or names a pod the placement does
    not know: an undercount would bias the inter-node share silently.
    """
    nan = {k: math.nan for k in ("transfers", "inter_node_transfers", "transfer_bytes",
                                 "inter_node_bytes")}
    if not trace or trace in ("[]", "null"):
        return nan
    try:
        hops = [h for h in decode_trace(trace) if h.caller != ORDER_CALLER]
    except (ValueError, TypeError):
        return nan
    inter: list[Any] = []
    for hop in hops:
        if hop.caller not in placement or hop.pod not in placement:
            return nan
        if placement[hop.caller] != placement[hop.pod]:
            inter.append(hop)
    return {
        "transfers": float(len(hops)),
        "inter_node_transfers": float(len(inter)),
        "transfer_bytes": float(sum(h.bytes for h in hops)),
        "inter_node_bytes": float(sum(h.bytes for h in inter)),
    }


def telemetry_delta(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Bytes per (source/destination workload, src/dst node) carried between two snapshots."""
    cols = [*TELEMETRY_KEYS, "bytes"]
    if after.empty:
        return pd.DataFrame(columns=cols).astype({"bytes": "int64"})
    a = after.groupby(TELEMETRY_KEYS, as_index=False)["bytes"].sum()
    if before.empty:
        delta = a
    else:
        b = before.groupby(TELEMETRY_KEYS, as_index=False)["bytes"].sum()
        delta = a.merge(b, on=TELEMETRY_KEYS, how="left", suffixes=("", "_before"))
        delta["bytes"] = delta["bytes"] - delta["bytes_before"].fillna(0)
        delta = delta[cols]
    delta = delta[delta["bytes"] > 0].reset_index(drop=True)
    delta["bytes"] = delta["bytes"].astype("int64")
    return delta
