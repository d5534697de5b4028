"""Headline numbers of a replicated run (``--replicates K``) combined over its replicates.

Each replicate is an ordinary run with its own seed, warm-up, redeployments and
measurements; its report's intervals (percentile bootstrap over its layouts and orders)
cover the spread *within* one run. What differs between runs (the warm-up's traffic
matrix, which layouts the redeployments produced, the machine's state) they cannot see.
The replicates' estimates are independent draws of the whole run, so the spread of
those estimates is the honest total variance of a run's estimate. Per headline number
and scheduler this module gives:

- each replicate's estimate with its own within-run interval;
- the combined estimate: the mean over the replicates;
- the between-replicate SD and range;
- a t interval on the replicate estimates, mean +/- t(K-1) * SD / sqrt(K);
- the ratio of the between-replicate SD to the within-run standard error (the
  replicates' interval half-widths over z, averaged). Near 1 the single-run intervals
  are honest; well above 1 they are too narrow (issue 14: 27 % and 48 % on two days).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis import breakdown, paper, tables
from analysis.tables import RunData
from results.manifest import Manifest
from results.store import ResultsStore

__all__ = [
    "METRICS",
    "ReplicateDir",
    "beside_paper_combined",
    "beside_paper_long",
    "combine",
    "is_replicated",
    "replicate_dirs",
    "replicate_estimates",
    "t_interval",
]

# metric -> its title in tables and the report, in the order they are shown.
METRICS = {
    "rt_reduction_largest_pct": "response-time reduction at the largest size, mean over "
                                "items (%)",
    "rt_reduction_overall_pct": "response-time reduction, mean over every cell (%)",
    "rt_reduction_by_size_pct": "response-time reduction per size, mean over items (%)",
    "rt_reduction_by_protocol_pct": "response-time reduction per protocol (%)",
    "rt_reduction_by_class_pct": "response-time reduction per item class (%)",
    "mean_rt_largest_ms": "mean response time at the largest size (ms)",
    "inter_node_transfers_pct": "inter-node transfers (%)",
    "inter_node_bytes_saved_pct": "inter-node bytes saved (%)",
    "distinct_layouts": "distinct layouts",
}


@dataclass(frozen=True)
class ReplicateDir:
    """One replicate of a replicated run: its index, seed and results directory."""

    index: int
    seed: int
    root: Path


def is_replicated(manifest: Manifest) -> bool:
    """Whether a results directory is a replicated run's top level."""
    return manifest.config.replicates > 1 or bool(manifest.replicates)


def replicate_dirs(root: Path) -> list[ReplicateDir]:
    """The replicates the top-level manifest lists, in order."""
    manifest = ResultsStore.open(root).manifest()
    return [ReplicateDir(r.index, r.seed, Path(root) / r.path) for r in manifest.replicates]


def replicate_estimates(run: RunData, index: int, seed: int) -> pd.DataFrame:
    """One replicate's headline numbers, long: metric, group, scheduler, value and its
    within-run interval (ci_low, ci_high; NaN for counts), replicate, seed."""
    rt = tables.response_time_table(run)
    rows: list[dict[str, Any]] = []
    base = run.baseline

    def add(metric: str, group: str, scheduler: str, value: float, low: float = math.nan,
            high: float = math.nan) -> None:
        rows.append({"metric": metric, "group": group, "scheduler": scheduler,
                     "value": float(value), "ci_low": float(low), "ci_high": float(high)})

    def reductions(metric: str, frame: pd.DataFrame, keys: Sequence[str]) -> None:
        for r in frame.to_dict("records"):
            if r["scheduler"] != base:
                group = ", ".join(_key(r[k]) for k in keys) if keys else "all cells"
                add(metric, group, r["scheduler"], r["reduction_pct"],
                    r["reduction_ci_low_pct"], r["reduction_ci_high_pct"])

    by_size = breakdown.reduction_by_size(run, rt)
    if not by_size.empty:
        largest = int(by_size["size"].max())
        at_largest = by_size[by_size["size"] == largest]
        reductions("rt_reduction_largest_pct", at_largest, ["size"])
        for r in at_largest.to_dict("records"):
            add("mean_rt_largest_ms", f"{largest} B", r["scheduler"], r["mean"],
                r["ci_low"], r["ci_high"])
    reductions("rt_reduction_overall_pct", breakdown.reduction_overall(run, rt), [])
    reductions("rt_reduction_by_size_pct", by_size, ["size"])
    reductions("rt_reduction_by_protocol_pct", breakdown.reduction_by_protocol(run, rt),
               ["protocol"])
    reductions("rt_reduction_by_class_pct", breakdown.reduction_by_class(run, rt),
               ["item_class", "protocol"])
    for e in breakdown.transfer_share_overall(run):
        add("inter_node_transfers_pct", "mean over items", e.scheduler, e.mean, e.low, e.high)
    by = tables.bytes_table(run)
    for r in by.to_dict("records") if not by.empty else []:
        if r["scheduler"] != base:
            add("inter_node_bytes_saved_pct", str(r["protocol"]), r["scheduler"],
                r["reduction_pct"], r["reduction_ci_low_pct"], r["reduction_ci_high_pct"])
    for r in tables.layouts_table(run).to_dict("records"):
        add("distinct_layouts", f"of {int(r['redeployments'])} redeployments",
            r["scheduler"], r["distinct_layouts"])
    return pd.DataFrame(rows).assign(replicate=index, seed=seed)


def _key(value: object) -> str:
    return f"{value} B" if isinstance(value, int | np.integer) else str(value)


def t_interval(values: Sequence[float], confidence: float = 0.95
               ) -> tuple[float, float, float, float]:
    """(mean, SD, low, high): the t interval mean +/- t(K-1) * SD / sqrt(K) over K
    independent estimates (NaN interval for K < 2; NaN values are left out)."""
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1)) * sd / math.sqrt(len(x))
    return mean, sd, mean - half, mean + half


def combine(estimates: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per metric, group and scheduler: replicates, combined mean, between-replicate SD,
    range, the t interval, the mean within-run SE and the ratio SD / within-run SE."""
    if estimates.empty:
        return pd.DataFrame()
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    rows = []
    for (metric, group, scheduler), g in estimates.groupby(
            ["metric", "group", "scheduler"], sort=False):
        values = [float(v) for v in g["value"]]
        mean, sd, low, high = t_interval(values, confidence)
        half = (g["ci_high"] - g["ci_low"]) / 2 / z
        within = float(half.mean()) if half.notna().any() else math.nan
        finite = [v for v in values if math.isfinite(v)]
        rows.append({
            "metric": metric, "group": group, "scheduler": scheduler,
            "replicates": len(finite), "mean": mean, "sd_between": sd,
            "min": min(finite) if finite else math.nan,
            "max": max(finite) if finite else math.nan,
            "ci_low": low, "ci_high": high, "se_within": within,
            "sd_between_over_se_within": (sd / within if within and math.isfinite(within)
                                          and math.isfinite(sd) else math.nan),
        })
    out = pd.DataFrame(rows)
    rank = {m: i for i, m in enumerate(METRICS)}
    return out.sort_values("metric", key=lambda c: c.map(lambda m: rank.get(m, len(rank))),
                           kind="stable").reset_index(drop=True)


def beside_paper_long(run: RunData) -> pd.DataFrame:
    """One replicate's "this run beside the paper" table (``paper.beside_paper``)."""
    rt = tables.response_time_table(run)
    return paper.beside_paper(
        baseline=run.baseline, schedulers=run.schedulers, protocols=run.config.protocols,
        classes=breakdown.item_classes(run), rt=rt,
        overall=breakdown.reduction_overall(run, rt),
        by_class=breakdown.reduction_by_class(run, rt),
        transfers=breakdown.transfer_share_overall(run), by=tables.bytes_table(run),
        lay=tables.layouts_table(run))


def beside_paper_combined(per_replicate: Sequence[pd.DataFrame],
                          confidence: float = 0.95) -> pd.DataFrame:
    """The paper's claims beside the replicates' figures: per claim and scheduler, each
    replicate's value, their mean with the t interval, and (for transfers) the
    baseline's mean. "up to" rows average each replicate's best cell, which may be a
    different cell in each."""
    frames = [f.assign(replicate=i) for i, f in enumerate(per_replicate, start=1)
              if not f.empty]
    if not frames:
        return pd.DataFrame()
    long = pd.concat(frames, ignore_index=True)
    rows = []
    for (claim, kind, scheduler), g in long.groupby(["claim", "kind", "scheduler"],
                                                   sort=False):
        measured = g[g["status"] == "measured"]
        mean, sd, low, high = t_interval([float(v) for v in measured["value"]], confidence)
        base = t_interval([float(v) for v in measured["baseline_value"]], confidence)
        rows.append({
            "claim": claim, "kind": kind, "paper": g["paper"].iloc[0],
            "compared_with": g["compared_with"].iloc[0], "scheduler": scheduler,
            "baseline": g["baseline"].iloc[0], "replicates_measured": len(measured),
            "per_replicate": "; ".join(
                f"r{r.replicate}: {_value(r._asdict())}" for r in g.itertuples()),
            "mean": mean, "sd_between": sd, "ci_low": low, "ci_high": high,
            "baseline_mean": base[0], "baseline_ci_low": base[2],
            "baseline_ci_high": base[3],
        })
    return pd.DataFrame(rows)


def _value(r: dict[str, Any]) -> str:
    if r["status"] != "measured":
        return str(r["status"])
    if r["kind"] == paper.COUNT:
        return str(r["where"])
    return f"{r['value']:.1f}" + (f" ({r['where']})" if r["where"] else "")
