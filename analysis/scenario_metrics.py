"""What a scenario run did, from its tables: response time per phase, what each
migration cost, how long each scheduler took to recover after each phase boundary and
event, and the inter-node bytes per phase.

Pure functions on plain DataFrames with the store's columns (see the issue 17 contract:
``orders``, ``migrations``, ``events``, ``traffic``) and the phases as
:class:`PhaseSpan` (name, start, end; seconds since the scheduler's scenario start).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

__all__ = [
    "EVENT_KINDS",
    "MIN_ORDERS",
    "SLOW_LOOKBACK_S",
    "TOLERANCE",
    "WINDOW_S",
    "PhaseSpan",
    "Trigger",
    "bytes_table",
    "migrations_table",
    "moves_summary",
    "phase_table",
    "recovery_table",
    "settled_median",
    "triggers",
]

# Recovery: the rolling median over this many seconds must be back within TOLERANCE of
# the phase's settled median (median of its last half) and stay there.
WINDOW_S = 5.0
TOLERANCE = 0.10
# A rolling window (or a look-back) with fewer orders says nothing.
MIN_ORDERS = 3
# An order is "slowed" by a migration when slower than the p95 of the scheduler's orders
# in this many seconds before the migration was decided.
SLOW_LOOKBACK_S = 10.0
# Events that disturb the cluster (the events table also logs "phase" and "rebalance").
EVENT_KINDS = ("drain", "add_node", "degrade")
# Triggers this close together (an event at a phase's start: the runner's clock and the
# phase boundary differ by milliseconds) are one disturbance.
_MERGE_S = 1.0


class PhaseSpan(NamedTuple):
    name: str
    start_s: float
    end_s: float


class Trigger(NamedTuple):
    t_s: float
    phase: str
    what: str  # "phase shared begins + drain node-2"


def phase_table(orders: pd.DataFrame, phases: Sequence[PhaseSpan],
                schedulers: Sequence[str]) -> pd.DataFrame:
    """Per scheduler x phase: orders sent, failed, and p50/p95/mean of the answered ones."""
    rows: list[dict[str, Any]] = []
    for s in schedulers:
        mine = orders[orders["scheduler"] == s]
        for p in phases:
            sub = mine[mine["phase"] == p.name]
            ok = sub.loc[sub["ok"].astype(bool), "latency_ms"].astype(float)
            failed = int((~sub["ok"].astype(bool)).sum())
            rows.append({
                "scheduler": s, "phase": p.name, "orders": len(sub), "failed": failed,
                "failed_pct": 100 * failed / len(sub) if len(sub) else math.nan,
                "p50_ms": _q(ok, 0.5), "p95_ms": _q(ok, 0.95),
                "mean_ms": float(ok.mean()) if len(ok) else math.nan,
            })
    return pd.DataFrame(rows)


def migrations_table(migrations: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """One row per migration with what it cost: ``took_s`` (decided until the old pod
    was gone and the new one ready, whichever came later) and the scheduler's orders
    sent meanwhile: how many, how many failed, how many answered slower than the p95 of
    its orders in the SLOW_LOOKBACK_S before the
    decision (``slow_threshold_ms``; NaN and ``slowed_during`` NaN with too few orders
    to say). A migration whose old pod never went (``done_s`` NaN) is counted until its
    new pod was ready, or at its decision alone."""
    cols = ["scheduler", "phase", "pod", "new_pod", "workload", "src_node", "dst_node",
            "strategy", "reason", "decided_s", "ready_s", "done_s", "took_s", "ok", "error",
            "orders_during", "failed_during", "slowed_during", "slow_threshold_ms"]
    if migrations.empty:
        return pd.DataFrame(columns=cols)
    rows: list[dict[str, Any]] = []
    for m in migrations.sort_values(["scheduler", "decided_s"], kind="stable").to_dict(
            "records"):
        decided = float(m["decided_s"])
        end = _window_end(m)
        mine = orders[orders["scheduler"] == m["scheduler"]]
        t = mine["t_s"].astype(float)
        during = mine[(t >= decided) & (t <= end)]
        before = mine[(t >= decided - SLOW_LOOKBACK_S) & (t < decided)
                      & mine["ok"].astype(bool)]["latency_ms"].astype(float)
        threshold = _q(before, 0.95) if len(before) >= MIN_ORDERS else math.nan
        ok_during = during.loc[during["ok"].astype(bool), "latency_ms"].astype(float)
        done = float(m["done_s"])
        rows.append({
            **{k: m.get(k) for k in cols[:12]},
            "took_s": end - decided if math.isfinite(done) else math.nan,
            "ok": bool(m["ok"]), "error": str(m["error"]),
            "orders_during": len(during),
            "failed_during": int((~during["ok"].astype(bool)).sum()),
            "slowed_during": (int((ok_during > threshold).sum()) if math.isfinite(threshold)
                              else math.nan),
            "slow_threshold_ms": threshold,
        })
    return pd.DataFrame(rows, columns=cols)


def moves_summary(migrations: pd.DataFrame, orders: pd.DataFrame,
                  schedulers: Sequence[str]) -> pd.DataFrame:
    """Per scheduler: pods moved (by reason), moves that failed, orders sent and failed,
    and orders failed while any of its moves was under way (each order once, though
    concurrent moves' windows overlap)."""
    rows: list[dict[str, Any]] = []
    for s in schedulers:
        mig = migrations[migrations["scheduler"] == s] if not migrations.empty else migrations
        mine = orders[orders["scheduler"] == s]
        failed = mine[~mine["ok"].astype(bool)]
        t = failed["t_s"].astype(float)
        in_move = pd.Series(False, index=failed.index)
        for m in mig.to_dict("records"):
            in_move |= (t >= float(m["decided_s"])) & (t <= _window_end(m))
        reasons = mig["reason"].value_counts() if len(mig) else pd.Series(dtype=int)
        rows.append({
            "scheduler": s, "moves": len(mig),
            "moves_ok": int(mig["ok"].astype(bool).sum()) if len(mig) else 0,
            "by_rebalance": int(reasons.get("rebalance", 0)),
            "by_drain": int(reasons.get("drain", 0)),
            "strategies": ", ".join(sorted(set(mig["strategy"].astype(str)))) if len(mig)
            else "",
            "orders": len(mine), "failed": len(failed),
            "failed_during_moves": int(in_move.sum()),
            "top_error": (str(failed["error"].value_counts().index[0]) if len(failed)
                          else ""),
        })
    return pd.DataFrame(rows)


def triggers(events: pd.DataFrame, phases: Sequence[PhaseSpan], scheduler: str
             ) -> list[Trigger]:
    """The disturbances a scheduler's run had: every phase boundary (from the scenario)
    and every drain, add_node and degrade event (at the time its events table logged),
    those within a second of each other merged."""
    raw: list[tuple[float, str]] = [(p.start_s, f"phase {p.name} begins") for p in phases[1:]]
    if not events.empty:
        ev = events[(events["scheduler"] == scheduler) & events["kind"].isin(EVENT_KINDS)]
        raw += [(float(e["t_s"]), f"{e['kind']} {e['detail']}".strip())
                for e in ev.to_dict("records")]
    merged: list[tuple[float, list[str]]] = []
    for t, what in sorted(raw, key=lambda r: r[0]):
        if merged and t - merged[-1][0] <= _MERGE_S:
            merged[-1][1].append(what)
        else:
            merged.append((t, [what]))
    found = []
    for t, names in merged:
        phase = _phase_at(phases, t)
        if phase is not None:  # an event after the last phase disturbs nothing measured
            found.append(Trigger(t, phase.name, " + ".join(names)))
    return found


def settled_median(orders: pd.DataFrame, phase: PhaseSpan) -> float:
    """The median response time over the last half of the phase (failed orders count as
    infinitely slow; inf when half or more of them failed, NaN without orders)."""
    mid = (phase.start_s + phase.end_s) / 2
    return _median_between(orders, mid, phase.end_s)


def recovery_table(orders: pd.DataFrame, events: pd.DataFrame,
                   phases: Sequence[PhaseSpan], schedulers: Sequence[str]) -> pd.DataFrame:
    """Per scheduler and trigger (see :func:`triggers`): the time until the rolling
    median (over the orders of the last WINDOW_S seconds since the trigger, failed ones
    infinitely slow, evaluated at every order with at least MIN_ORDERS in its window) is
    back within TOLERANCE of the phase's settled median (:func:`settled_median`).

    The first time counts: requiring it to stay in the band would turn a stable but noisy
    phase (a 5 s median of a few dozen orders moves by 10 % by chance) into a late or
    missing recovery. The phase's own settling is checked instead: ``recovery_s`` is NaN
    and ``status`` "not recovered" when the rolling median never came within the band
    before the next trigger or the phase's end, when half or more of the orders of the
    phase's last half failed, or when the phase was still drifting (the medians of its
    last two quarters differ by more than twice TOLERANCE); ``note`` says which.
    "too few orders": no window had MIN_ORDERS orders."""
    rows: list[dict[str, Any]] = []
    for s in schedulers:
        mine = orders[orders["scheduler"] == s].sort_values("t_s", kind="stable")
        found = triggers(events, phases, s)
        for i, trig in enumerate(found):
            phase = _phase_named(phases, trig.phase)
            later = [g.t_s for g in found[i + 1:] if g.phase == trig.phase]
            horizon = later[0] if later else phase.end_s
            settled = settled_median(mine, phase)
            rec, status, note = _recovery(mine, trig.t_s, horizon, phase, settled)
            rows.append({
                "scheduler": s, "t_s": trig.t_s, "phase": trig.phase, "trigger": trig.what,
                "settled_median_ms": settled, "watched_s": horizon - trig.t_s,
                "recovery_s": rec, "status": status, "note": note,
            })
    return pd.DataFrame(rows, columns=["scheduler", "t_s", "phase", "trigger",
                                       "settled_median_ms", "watched_s", "recovery_s",
                                       "status", "note"])


def bytes_table(traffic: pd.DataFrame, phases: Sequence[PhaseSpan],
                schedulers: Sequence[str], baseline: str | None) -> pd.DataFrame:
    """Per scheduler x phase: inter-node bytes, their share of all pod-to-pod bytes, and
    (with a baseline) the inter-node bytes saved vs the baseline in that phase (%)."""
    cols = ["scheduler", "phase", "inter_node_bytes", "intra_node_bytes", "bytes",
            "inter_node_share_pct", "inter_node_saved_pct"]
    if traffic.empty:
        return pd.DataFrame(columns=cols)
    per = traffic.groupby(["scheduler", "phase"]).agg(
        inter_node_bytes=("inter_node_bytes", "sum"),
        intra_node_bytes=("intra_node_bytes", "sum"), bytes=("bytes", "sum"))
    rows: list[dict[str, Any]] = []
    for s in schedulers:
        for p in phases:
            if (s, p.name) not in per.index:
                continue
            r = per.loc[(s, p.name)]
            inter, total = int(r["inter_node_bytes"]), int(r["bytes"])
            base = (int(per.loc[(baseline, p.name), "inter_node_bytes"])
                    if baseline is not None and (baseline, p.name) in per.index else 0)
            rows.append({
                "scheduler": s, "phase": p.name, "inter_node_bytes": inter,
                "intra_node_bytes": int(r["intra_node_bytes"]), "bytes": total,
                "inter_node_share_pct": 100 * inter / total if total else math.nan,
                "inter_node_saved_pct": (100 * (base - inter) / base
                                         if base and s != baseline else math.nan),
            })
    return pd.DataFrame(rows, columns=cols)


def _recovery(orders: pd.DataFrame, t0: float, horizon: float, phase: PhaseSpan,
              settled: float) -> tuple[float, str, str]:
    """(recovery_s, status, note); see :func:`recovery_table`."""
    if math.isnan(settled):
        return math.nan, "too few orders", "no orders in the phase's last half"
    if math.isinf(settled):
        return math.nan, "not recovered", "half or more of the phase's last-half orders failed"
    drifts, q3, q4 = _drifts(orders, phase, settled)
    if drifts:
        return (math.nan, "not recovered",
                f"still drifting at the phase's end: {q3:.1f} ms, then {q4:.1f} ms")
    t_all = orders["t_s"].astype(float)
    sub = orders[(t_all >= t0) & (t_all < horizon)]
    t = sub["t_s"].to_numpy(dtype=float)
    lat = _latencies(sub)
    evaluated = False
    for i, now in enumerate(t):
        lo = int(np.searchsorted(t, max(t0, now - WINDOW_S), side="left"))
        if i + 1 - lo < MIN_ORDERS:
            continue
        evaluated = True
        if abs(float(np.median(lat[lo:i + 1])) - settled) <= TOLERANCE * settled:
            return now - t0, "recovered", ""
    if not evaluated:
        return math.nan, "too few orders", f"fewer than {MIN_ORDERS} orders in every window"
    return (math.nan, "not recovered",
            f"not within {TOLERANCE * 100:g} % in the {horizon - t0:.0f} s watched")


def _drifts(orders: pd.DataFrame, phase: PhaseSpan, settled: float
            ) -> tuple[bool, float, float]:
    """Whether the phase's last two quarters differ: medians more than twice TOLERANCE
    apart and a rank test sure of it (p < 0.01; a few dozen orders per quarter differ
    by 20 % by chance now and then). (drifts, the two medians)."""
    mid = phase.start_s + (phase.end_s - phase.start_s) / 2
    quarter = phase.start_s + 3 * (phase.end_s - phase.start_s) / 4
    a, b = _between(orders, mid, quarter), _between(orders, quarter, phase.end_s)
    if len(a) < MIN_ORDERS or len(b) < MIN_ORDERS:
        return False, math.nan, math.nan
    q3, q4 = float(np.median(a)), float(np.median(b))
    if q3 == q4 or (math.isfinite(q3) and math.isfinite(q4)
                    and abs(q4 - q3) <= 2 * TOLERANCE * settled):
        return False, q3, q4
    return bool(mannwhitneyu(a, b).pvalue < 0.01), q3, q4


def _median_between(orders: pd.DataFrame, start: float, end: float) -> float:
    lat = _between(orders, start, end)
    return float(np.median(lat)) if len(lat) else math.nan


def _between(orders: pd.DataFrame, start: float, end: float
             ) -> np.ndarray[Any, np.dtype[np.float64]]:
    t = orders["t_s"].astype(float)
    return _latencies(orders[(t >= start) & (t < end)])


def _latencies(orders: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]:
    ok = orders["ok"].astype(bool).to_numpy()
    lat = orders["latency_ms"].to_numpy(dtype=float)
    return np.where(ok, lat, math.inf)


def _window_end(m: dict[str, Any]) -> float:
    """When the move was over: the new pod ready *and* the old one gone (an eviction
    stops the old pod before the new one is ready: the later of the two)."""
    ends = [float(m[k]) for k in ("done_s", "ready_s") if math.isfinite(float(m[k]))]
    if ends:
        return max(ends)
    value = float(m["decided_s"])
    return value if math.isfinite(value) else math.nan


def _phase_at(phases: Sequence[PhaseSpan], t: float) -> PhaseSpan | None:
    for p in phases:
        if p.start_s <= t < p.end_s:
            return p
    return None


def _phase_named(phases: Sequence[PhaseSpan], name: str) -> PhaseSpan:
    return next(p for p in phases if p.name == name)


def _q(values: pd.Series, q: float) -> float:
    return float(values.quantile(q)) if len(values) else math.nan
