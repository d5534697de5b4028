"""Measuring one layout: orders through the data plane, hops from traces, bytes from the mesh.

Inter-node *transfers* are counted from each order's trace with the layout's placement
(``settlers.trace.inter_node_hops``): exact per order. Inter-node *bytes* come from the
mesh's own counters (the data plane's ``traffic_snapshot``), differenced over the
chunk, so they include everything the mesh carried, as Istio's telemetry would.
The traces' byte counts are kept beside them as a cross-check.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Protocol

import pandas as pd

from harness.backends.base import TELEMETRY_KEYS, DataPlane, SweepsInCluster
from settlers.trace import ORDER_CALLER, decode_trace
from settlers.wire import WireProtocol

__all__ = ["Sweep", "default_sweep", "hop_counts", "measure_layout", "telemetry_delta"]


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
    run_sweep = sweep or default_sweep(plane)
    await plane.relayout(placement)
    targets = {item: plane.entry(item) for item in items}
    before = plane.traffic_snapshot()
    samples = await run_sweep(
        targets, protocol, list(items), list(sizes),
        count=count, repeat=repeat, warmup=warmup, progress=False,
    )
    telemetry = telemetry_delta(before, plane.traffic_snapshot())
    samples = annotate_samples(samples, placement, layout_id=layout_id, protocol=protocol)
    telemetry.insert(0, "layout_id", layout_id)
    telemetry.insert(1, "protocol", protocol)
    return samples, telemetry


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
