"""This run beside the paper: each of the NetMARKS paper's numbers next to the figure of
this run that matches it, like for like.

The paper quotes two kinds of numbers, and each is compared with its own kind:

- *up to* (37 % overall, 60 % HTTP and 40 % gRPC on simple items, 50 % of the bytes):
  the best case, so this run's best cell (item x size x protocol, or protocol for
  bytes), named, with that cell's interval. A best-of-many is biased upwards; the
  mean over cells, shown too, is not.
- *means and shares* (about 20 % on complex items, 80 % vs 35 % of transfers across
  nodes): this run's mean over the matching cells, with its interval.
- *counts* (about 120 distinct layouts of 1000 redeployments): this run's counts.

A figure this run has no data for (only HTTP measured, no simple-chain item ordered,
no telemetry, an economy file that is gone) says "not measured" and why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from analysis.breakdown import ALL
from analysis.estimate import Estimate
from analysis.render import ci_text
from settlers.picks import SHARED_SUPPLY_CHAIN, SIMPLE_CHAIN

__all__ = ["PAPER", "beside_paper", "pretty_beside_paper"]

# The NetMARKS paper's claims (abstract: response time and bytes; the rest via
# secondary sources, see ../shared/notes/netmarks-and-kube-scheduler.md).
PAPER = {
    "response_time_reduction_pct": 37.0,
    "inter_node_bytes_saved_pct": 50.0,
    "inter_node_transfers_default_pct": 80.0,
    "inter_node_transfers_netmarks_pct": 35.0,
    "simple_http_reduction_pct": 60.0,
    "simple_grpc_reduction_pct": 40.0,
    "complex_reduction_pct": 20.0,
    "distinct_layouts": 120,
    "redeployments": 1000,
}

# The scheduler the paper measured; other schedulers get the same rows without a paper
# figure of their own.
PAPER_SCHEDULER = "netmarks"

UP_TO, MEAN, COUNT = "up to", "mean", "count"


def beside_paper(
    *, baseline: str, schedulers: Sequence[str], protocols: Sequence[str],
    classes: Mapping[str, str] | None, rt: pd.DataFrame, overall: pd.DataFrame,
    by_class: pd.DataFrame, transfers: Sequence[Estimate], by: pd.DataFrame,
    lay: pd.DataFrame,
) -> pd.DataFrame:
    """Long table: one row per paper claim and scheduler (not the baseline).

    ``classes``: item -> class (``breakdown.item_classes``; None: the economy, so the
    item classes, is unknown); ``rt``: ``tables.response_time_table``; ``overall`` and
    ``by_class``: ``breakdown.reduction_overall`` / ``reduction_by_class``;
    ``transfers``: ``breakdown.transfer_share_overall``;
    ``by``: ``tables.bytes_table``; ``lay``: ``tables.layouts_table``.
    """
    rows: list[dict[str, Any]] = []
    share = {e.scheduler: e for e in transfers}
    for s in schedulers:
        if s == baseline:
            continue
        claims: list[tuple[str, str, str, str, dict[str, Any]]] = [
            ("response time reduction, overall", UP_TO,
             f"up to {PAPER['response_time_reduction_pct']:.0f} %",
             "best cell (item x size x protocol)", _best_cell(rt, s)),
            ("response time reduction, overall", MEAN, "(the paper gives 'up to' only)",
             "mean over every cell", _group_mean(overall, s, {})),
            *[(f"response time reduction, simple chains, {protocol}", UP_TO,
               f"up to {PAPER[key]:.0f} %",
               f"best simple-chain cell (item x size), {protocol}",
               _class_best(rt, classes, s, SIMPLE_CHAIN, protocol, protocols))
              for protocol, key in (("http", "simple_http_reduction_pct"),
                                    ("grpc", "simple_grpc_reduction_pct"))],
            ("response time reduction, shared supply chains", MEAN,
             f"about {PAPER['complex_reduction_pct']:.0f} %",
             "mean over the shared-supply-chain cells (items x sizes x protocols)",
             _class_mean(by_class, classes, s, SHARED_SUPPLY_CHAIN)),
            (f"inter-node transfers, {baseline} vs scheduler", MEAN,
             f"{PAPER['inter_node_transfers_default_pct']:.0f} % vs "
             f"{PAPER['inter_node_transfers_netmarks_pct']:.0f} %",
             "share of transfers crossing nodes, mean over items",
             _transfers(share, s, baseline)),
            ("inter-node bytes saved", UP_TO,
             f"up to {PAPER['inter_node_bytes_saved_pct']:.0f} %",
             "best protocol (inter-node bytes per measured layout)", _bytes(by, s)),
            ("distinct layouts of the redeployments", COUNT,
             f"about {PAPER['distinct_layouts']} of {PAPER['redeployments']}",
             "distinct layouts / redeployments (layouts measured)",
             _layouts(lay, s, baseline)),
        ]
        rows += [{"claim": claim, "kind": kind, "paper": text, "compared_with": compared,
                  "scheduler": s, "baseline": baseline, **_empty(), **found}
                 for claim, kind, text, compared, found in claims]
    return pd.DataFrame(rows)


def pretty_beside_paper(long: pd.DataFrame) -> pd.DataFrame:
    """Wide: one row per claim, the paper's figure, how it is compared, then one
    column per scheduler. The paper's figures are NetMARKS vs the default scheduler;
    other schedulers have no paper figure of their own."""
    if long.empty:
        return pd.DataFrame()
    rows = []
    for (claim, kind), group in long.groupby(["claim", "kind"], sort=False):
        row = {"claim": claim, "kind": kind.upper(),
               "paper (NetMARKS vs default)": group["paper"].iloc[0],
               "this run: compared with": group["compared_with"].iloc[0]}
        for r in group.itertuples():
            row[f"{r.scheduler} vs {r.baseline}"] = _text(r._asdict())
        rows.append(row)
    return pd.DataFrame(rows)


def _empty() -> dict[str, Any]:
    nan = math.nan
    return {"value": nan, "ci_low": nan, "ci_high": nan, "baseline_value": nan,
            "baseline_ci_low": nan, "baseline_ci_high": nan, "where": "",
            "status": "measured"}


def _missing(why: str) -> dict[str, Any]:
    return {"status": f"not measured: {why}"}


def _text(r: dict[str, Any]) -> str:
    if r["status"] != "measured":
        return str(r["status"])
    if r["kind"] == COUNT:
        return str(r["where"])
    value = ci_text(r["value"], r["ci_low"], r["ci_high"]) + " %"
    if math.isfinite(r["baseline_value"]):  # transfers: the baseline's share first
        base = ci_text(r["baseline_value"], r["baseline_ci_low"], r["baseline_ci_high"])
        value = f"{base} % vs {value}"
    return f"{value} ({r['where']})" if r["where"] else value


def _found(value: float, low: float, high: float, where: str = "") -> dict[str, Any]:
    if not math.isfinite(value):
        return _missing("no cell with data for both schedulers")
    return {"value": value, "ci_low": low, "ci_high": high, "where": where}


def _best_cell(rt: pd.DataFrame, s: str, *, protocol: str | None = None,
               items: set[str] | None = None) -> dict[str, Any]:
    mine = rt[rt["scheduler"] == s] if not rt.empty else rt
    if protocol is not None and not mine.empty:
        mine = mine[mine["protocol"] == protocol]
    if items is not None and not mine.empty:
        mine = mine[mine["item"].isin(items)]
    mine = mine.dropna(subset=["reduction_pct"]) if not mine.empty else mine
    if mine.empty:
        return _missing("no cell with data for both schedulers")
    top = mine.loc[mine["reduction_pct"].idxmax()]
    return _found(float(top["reduction_pct"]), float(top["reduction_ci_low_pct"]),
                  float(top["reduction_ci_high_pct"]),
                  f"{top['item']}, {int(top['size'])} B, {top['protocol']}")


def _group_mean(frame: pd.DataFrame | None, s: str, keys: dict[str, Any]) -> dict[str, Any]:
    if frame is None or frame.empty:
        return _missing("no cell with data for both schedulers")
    row = frame[frame["scheduler"] == s]
    for col, value in keys.items():
        row = row[row[col] == value]
    if row.empty:
        return _missing("no cell with data for both schedulers")
    r = row.iloc[0]
    return _found(float(r["reduction_pct"]), float(r["reduction_ci_low_pct"]),
                  float(r["reduction_ci_high_pct"]), f"{int(r['cells'])} cells")


_NO_CLASSES = "the economy file is gone, so the item classes are unknown"


def _class_best(rt: pd.DataFrame, classes: Mapping[str, str] | None, s: str, cls: str,
                protocol: str, protocols: Sequence[str]) -> dict[str, Any]:
    if protocol not in protocols:
        return _missing(f"this run measured {', '.join(protocols)} only")
    if classes is None:
        return _missing(_NO_CLASSES)
    items = {i for i, c in classes.items() if c == cls}
    if not items:
        return _missing(f"no {cls} item ordered")
    return _best_cell(rt, s, protocol=protocol, items=items)


def _class_mean(by_class: pd.DataFrame, classes: Mapping[str, str] | None, s: str,
                cls: str) -> dict[str, Any]:
    if classes is None:
        return _missing(_NO_CLASSES)
    if cls not in classes.values() or by_class.empty:
        return _missing(f"no {cls} item ordered")
    # Over every protocol: the paper's figure names none.
    key = ALL if ALL in set(by_class["protocol"]) else str(by_class["protocol"].iloc[0])
    return _group_mean(by_class, s, {"item_class": cls, "protocol": key})


def _transfers(share: dict[str, Estimate], s: str, baseline: str) -> dict[str, Any]:
    mine, base = share.get(s), share.get(baseline)
    if mine is None or base is None or not (math.isfinite(mine.mean)
                                            and math.isfinite(base.mean)):
        return _missing("no order with a transfer between pods")
    return {"value": mine.mean, "ci_low": mine.low, "ci_high": mine.high,
            "baseline_value": base.mean, "baseline_ci_low": base.low,
            "baseline_ci_high": base.high, "where": ""}


def _bytes(by: pd.DataFrame, s: str) -> dict[str, Any]:
    mine = by[by["scheduler"] == s].dropna(subset=["reduction_pct"]) if not by.empty else by
    if mine.empty:
        return _missing("no mesh telemetry between producers")
    top = mine.loc[mine["reduction_pct"].idxmax()]
    return _found(float(top["reduction_pct"]), float(top["reduction_ci_low_pct"]),
                  float(top["reduction_ci_high_pct"]), str(top["protocol"]))


def _layouts(lay: pd.DataFrame, s: str, baseline: str) -> dict[str, Any]:
    rows = lay.set_index("scheduler") if not lay.empty else lay
    if lay.empty or s not in rows.index or baseline not in rows.index:
        return _missing("no placements")

    def count(name: str) -> str:
        r = rows.loc[name]
        return (f"{name}: {int(r['distinct_layouts'])} of {int(r['redeployments'])} "
                f"({int(r['layouts_measured'])} measured)")

    return {"value": float(rows.loc[s, "distinct_layouts"]),
            "baseline_value": float(rows.loc[baseline, "distinct_layouts"]),
            "where": f"{count(baseline)}; {count(s)}"}
