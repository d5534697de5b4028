"""Reductions vs the baseline per message size, per protocol and per item class.

The paper does not quote one number: it quotes "up to" figures that belong to the best
item and size, and separate figures for simple items (per protocol) and complex ones.
These tables split the response-time cells (item x size x protocol, the rows of
``tables.response_time_table``) into those groups and give, per group and scheduler:

- the mean over the group's cells of each cell's mean response time and of each cell's
  reduction vs the baseline, with percentile bootstrap intervals from
  ``estimate.estimate_group`` (the estimator and two-stage bootstrap of every other
  table, one resample of a scheduler's layouts shared by the whole group);
- the best cell of the group ("up to"), with that cell's own interval from the
  response-time table. The best of several noisy cells is biased upwards (the winner
  of many draws); the mean beside it is not.

Item classes come from the economy's graph (``settlers.picks.item_class``): a *simple
chain* has a dependency closure that is one path, a *shared supply chain* branches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from analysis.estimate import Estimate, estimate_group
from analysis.tables import RunData
from settlers.picks import ITEM_CLASSES, depths, item_class, shared_inputs

__all__ = [
    "ALL",
    "CELL",
    "cell_name",
    "item_class_table",
    "item_classes",
    "reduction_by_class",
    "reduction_by_protocol",
    "reduction_by_size",
    "reduction_overall",
    "reduction_table",
    "transfer_share_overall",
]

CELL = ["item", "size", "protocol"]
# The key of a row that spans every protocol (or every cell).
ALL = "all"


def item_classes(run: RunData) -> dict[str, str] | None:
    """The run's items -> class; None when the run's economy cannot be loaded any more."""
    try:
        economy = run.config.load_economy()
    except ValueError:
        return None
    return {i: item_class(economy, i) for i in run.items if i in economy}


def item_class_table(run: RunData) -> pd.DataFrame:
    """Per ordered item: its class and the graph facts it follows from."""
    try:
        economy = run.config.load_economy()
    except ValueError:
        return pd.DataFrame()
    depth = depths(economy)
    rows = []
    for item in run.items:
        if item not in economy:
            continue
        closure = economy.closure(item)
        rows.append({
            "item": item,
            "item_class": item_class(economy, item),
            "hops_to_raw": depth[item],
            "services": len(closure),
            "branching": ", ".join(n for n in closure if len(economy[n].inputs) >= 2),
            "shared_inputs": ", ".join(shared_inputs(economy, item)),
        })
    return pd.DataFrame(rows)


def reduction_table(run: RunData, rt: pd.DataFrame, by: Sequence[str], *,
                    seed: int) -> pd.DataFrame:
    """Per group of cells (``by``: any of ``item_class``, ``size``, ``protocol``; none
    for one group of every cell): mean response time and reduction over the group's
    cells with intervals, the number of cells, and the best cell with its interval."""
    by = list(by)
    ok = run.ok_samples()
    if ok.empty:
        return pd.DataFrame()
    if "item_class" in by:
        classes = item_classes(run)
        if classes is None:
            return pd.DataFrame()
        ok = ok.assign(item_class=ok["item"].map(classes)).dropna(subset=["item_class"])
        rt = rt.assign(item_class=rt["item"].map(classes))
    units = run.units_by_scheduler()
    groups = ok.groupby(by, sort=True) if by else [((ALL,), ok)]
    rows: list[dict[str, Any]] = []
    for n, (key, group) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        keys = dict(zip(by, key, strict=True)) if by else {"group": ALL}
        cells = [{lid: list(g["latency_ms"]) for lid, g in cell.groupby("layout_id")}
                 for _, cell in group.groupby(CELL, sort=True)]
        estimates = estimate_group(cells, units, baseline=run.baseline,
                                   resamples=run.config.bootstrap,
                                   confidence=run.config.confidence, seed=seed + n)
        in_group = rt
        for col, value in keys.items() if by else ():
            in_group = in_group[in_group[col] == value]
        for e in estimates:
            rows.append({**keys, **_row(e, len(cells)),
                         **_best(in_group, e.scheduler, run.baseline)})
    return pd.DataFrame(rows)


def reduction_by_size(run: RunData, rt: pd.DataFrame) -> pd.DataFrame:
    """Per message size, over every item and protocol."""
    return reduction_table(run, rt, ["size"], seed=50_000)


def reduction_by_protocol(run: RunData, rt: pd.DataFrame) -> pd.DataFrame:
    """Per protocol, over every item and size."""
    return reduction_table(run, rt, ["protocol"], seed=60_000)


def reduction_by_class(run: RunData, rt: pd.DataFrame) -> pd.DataFrame:
    """Per item class and protocol, over the class's items and every size; with more
    than one protocol also per class over all of them (protocol ``all``). Empty when
    the economy is not available."""
    per_protocol = reduction_table(run, rt, ["item_class", "protocol"], seed=70_000)
    if per_protocol.empty or per_protocol["protocol"].nunique() < 2:
        frames = [per_protocol]
    else:
        both = reduction_table(run, rt, ["item_class"], seed=75_000).assign(protocol=ALL)
        frames = [per_protocol, both]
    out = pd.concat(frames, ignore_index=True)
    if out.empty:
        return out
    rank = {c: i for i, c in enumerate(ITEM_CLASSES)}
    prank = {p: i for i, p in enumerate([*run.config.protocols, ALL])}
    out = out.sort_values(
        ["item_class", "protocol"], kind="stable",
        key=lambda col: col.map(rank if col.name == "item_class" else prank))
    columns = ["item_class", "protocol"] + [c for c in out.columns
                                            if c not in ("item_class", "protocol")]
    return out[columns].reset_index(drop=True)


def reduction_overall(run: RunData, rt: pd.DataFrame) -> pd.DataFrame:
    """One group: every item x size x protocol the run measured."""
    return reduction_table(run, rt, [], seed=80_000)


def transfer_share_overall(run: RunData) -> list[Estimate]:
    """Share of transfers that crossed nodes (%), mean over the items (each item one
    cell, as the mean of the transfers table's rows), with intervals."""
    ok = run.ok_samples()
    ok = ok[ok["transfers"] > 0] if not ok.empty else ok
    if ok.empty:
        return []
    cells = []
    for _, cell in ok.groupby("item", sort=True):
        share = 100.0 * cell["inter_node_transfers"] / cell["transfers"]
        cells.append({lid: list(share[g.index]) for lid, g in cell.groupby("layout_id")})
    return estimate_group(cells, run.units_by_scheduler(), baseline=run.baseline,
                          resamples=run.config.bootstrap, confidence=run.config.confidence,
                          seed=90_000)


def _row(e: Estimate, cells: int) -> dict[str, Any]:
    return {
        "scheduler": e.scheduler,
        "mean": e.mean,
        "ci_low": e.low,
        "ci_high": e.high,
        "reduction_pct": 100 * e.reduction,
        "reduction_ci_low_pct": 100 * e.reduction_low,
        "reduction_ci_high_pct": 100 * e.reduction_high,
        "cells": cells,
        "units": e.units,
        "coverage": e.coverage,
    }


def _best(cells: pd.DataFrame, scheduler: str, baseline: str) -> dict[str, Any]:
    """The scheduler's cell with the largest reduction ("up to"), from the response-time
    table, with that cell's own interval."""
    mine = cells[(cells["scheduler"] == scheduler)].dropna(subset=["reduction_pct"])
    if scheduler == baseline or mine.empty:
        return {"best_reduction_pct": float("nan"), "best_ci_low_pct": float("nan"),
                "best_ci_high_pct": float("nan"), "best_cell": ""}
    top = mine.loc[mine["reduction_pct"].idxmax()]
    return {
        "best_reduction_pct": float(top["reduction_pct"]),
        "best_ci_low_pct": float(top["reduction_ci_low_pct"]),
        "best_ci_high_pct": float(top["reduction_ci_high_pct"]),
        "best_cell": cell_name(top),
    }


def cell_name(row: pd.Series) -> str:
    """``"boat, 1048576 B, http"``."""
    return f"{row['item']}, {int(row['size'])} B, {row['protocol']}"
