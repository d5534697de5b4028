"""The headline metrics of one results directory, each with its interval, in long format.

A sweep compares these across its grid points. Every interval is the point's own, from
the estimators and two-stage bootstrap of the run's tables (layouts, then orders within
a layout), so a sweep's error bars mean what a run's report means.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import tables
from analysis.breakdown import reduction_table, transfer_share_overall

__all__ = ["METRICS", "point_metrics"]

# metric -> (title, unit, decimals); in the order the report shows them.
METRICS: dict[str, tuple[str, str, int]] = {
    "rt_reduction_largest_pct": (
        "reduction of the mean response time at the largest size vs the baseline", "%", 1),
    "mean_rt_largest_ms": ("mean response time at the largest size", "ms", 1),
    "inter_node_transfers_pct": ("share of transfers that crossed nodes", "%", 1),
    "inter_node_bytes_saved_pct": ("inter-node bytes saved vs the baseline", "%", 1),
    "distinct_layouts": ("distinct layouts among the redeployments", "", 0),
}
# Metrics that compare with the baseline: the baseline's own row would be 0 by definition.
VS_BASELINE = {"rt_reduction_largest_pct", "inter_node_bytes_saved_pct"}


def point_metrics(root: Path) -> pd.DataFrame:
    """Columns scheduler, metric, mean, low, high (NaN where a point has no interval,
    as for a count); empty when the directory has no measurements yet."""
    full = tables.load_run(Path(root))
    if full.samples.empty:
        return pd.DataFrame(columns=["scheduler", "metric", "mean", "low", "high"])
    # With --load, the headline is at the lowest offered load, as in the run's report.
    run = full.at_load(min(full.loads)) if full.loads else full
    rows: list[dict[str, Any]] = []

    largest = int(run.samples["size"].max())
    at_largest = replace(run, samples=run.samples[run.samples["size"] == largest])
    rt = tables.response_time_table(at_largest)
    for r in reduction_table(at_largest, rt, [], seed=80_000).to_dict("records"):
        rows.append(_row(r["scheduler"], "mean_rt_largest_ms", r["mean"], r["ci_low"],
                         r["ci_high"]))
        if r["scheduler"] != run.baseline:
            rows.append(_row(r["scheduler"], "rt_reduction_largest_pct", r["reduction_pct"],
                             r["reduction_ci_low_pct"], r["reduction_ci_high_pct"]))

    for e in transfer_share_overall(run):
        rows.append(_row(e.scheduler, "inter_node_transfers_pct", e.mean, e.low, e.high))

    by = tables.bytes_table(run)
    if not by.empty:
        # Over protocols: the mean of each protocol's reduction and of its bounds.
        per = by.groupby("scheduler", sort=False)[
            ["reduction_pct", "reduction_ci_low_pct", "reduction_ci_high_pct"]].mean()
        for scheduler, r in per.iterrows():
            if scheduler != run.baseline:
                rows.append(_row(str(scheduler), "inter_node_bytes_saved_pct",
                                 r["reduction_pct"], r["reduction_ci_low_pct"],
                                 r["reduction_ci_high_pct"]))

    for r in tables.layouts_table(run).to_dict("records"):
        rows.append(_row(r["scheduler"], "distinct_layouts", r["distinct_layouts"],
                         math.nan, math.nan))
    order = {m: i for i, m in enumerate(METRICS)}
    out = pd.DataFrame(rows)
    return out.sort_values("metric", kind="stable", key=lambda c: c.map(order)).reset_index(
        drop=True)


def _row(scheduler: str, metric: str, mean: Any, low: Any, high: Any) -> dict[str, Any]:
    return {"scheduler": str(scheduler), "metric": metric, "mean": float(mean),
            "low": float(low), "high": float(high)}
