"""The scenario timeline: response time over time, one panel per scheduler on shared
axes, with the phases, the events, the migrations and the failed orders on it."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from analysis.scenario_metrics import EVENT_KINDS, PhaseSpan

__all__ = ["bin_width", "timeline_plot"]

_EVENT_COLOURS = dict(zip(EVENT_KINDS, ("#d62728", "#2ca02c", "#9467bd"), strict=True))
_MIGRATION = "#ff7f0e"


def bin_width(duration_s: float) -> float:
    """About 100 bins over the scenario, at least a second, in whole half seconds."""
    return max(1.0, math.ceil(duration_s / 100 * 2) / 2)


def timeline_plot(orders: pd.DataFrame, migrations: pd.DataFrame, events: pd.DataFrame,
                  phases: Sequence[PhaseSpan], schedulers: Sequence[str]) -> Figure:
    """Median and p95 of the answered orders per time bin; failed orders as crosses at
    the top; dashed lines at phase boundaries (named in the first panel), coloured
    dotted lines at drain / add_node / degrade events; shaded spans from each
    migration's decision until its old pod was gone."""
    sns.set_theme(style="whitegrid", context="paper")
    end = max([p.end_s for p in phases] + [float(orders["t_s"].max()) if len(orders) else 0])
    width = bin_width(end)
    fig, axes = plt.subplots(len(schedulers), 1, figsize=(9, 1.4 + 2.1 * len(schedulers)),
                             squeeze=False, sharex=True, sharey=True, layout="constrained")
    palette = sns.color_palette("colorblind", 2)
    ok_all = orders[orders["ok"].astype(bool)]
    for ax, s in zip(axes[:, 0], schedulers, strict=True):
        mine = orders[orders["scheduler"] == s]
        ok = ok_all[ok_all["scheduler"] == s]
        if len(ok):
            binned = ok.assign(bin=(ok["t_s"].astype(float) // width) * width + width / 2)
            stats = binned.groupby("bin")["latency_ms"].agg(
                p50=lambda v: v.quantile(0.5), p95=lambda v: v.quantile(0.95))
            # p95 under the median: where they coincide the median shows.
            ax.plot(stats.index, stats["p95"], "--", lw=1.0, color=palette[1])
            ax.plot(stats.index, stats["p50"], "-", lw=1.3, color=palette[0])
        top = blended_transform_factory(ax.transData, ax.transAxes)
        failed = mine.loc[~mine["ok"].astype(bool), "t_s"].astype(float)
        ax.plot(failed, np.full(len(failed), 0.96), "x", ms=4, color="#d62728",
                transform=top, clip_on=False, in_layout=False)
        _mark_migrations(ax, migrations, s)
        _mark_phases_and_events(ax, events, phases, s)
        moved = _count(migrations, s)
        ax.set_title(f"{s}: {len(mine)} orders, {len(failed)} failed, "
                     f"{moved} pod{'s' * (moved != 1)} moved", fontsize="small", loc="left")
        ax.set_ylabel("response time (ms)")
    _maybe_log(axes[0, 0], ok_all)
    axes[-1, 0].set_xlabel("seconds since the scenario started")
    axes[-1, 0].set_xlim(0, end)
    first = axes[0, 0]
    label_at = blended_transform_factory(first.transData, first.transAxes)
    for p in phases:
        first.text(p.start_s + 0.01 * end, 0.86, p.name, transform=label_at, ha="left",
                   va="top", fontsize="small", style="italic",
                   bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})
    fig.legend(handles=_legend(events), loc="outside lower center", ncol=4,
               fontsize="small")
    return fig


def _mark_migrations(ax: Axes, migrations: pd.DataFrame, scheduler: str) -> None:
    if migrations.empty:
        return
    bottom = blended_transform_factory(ax.transData, ax.transAxes)
    for m in migrations[migrations["scheduler"] == scheduler].to_dict("records"):
        start = float(m["decided_s"])
        stop = next((float(m[k]) for k in ("done_s", "ready_s")
                     if math.isfinite(float(m[k]))), start)
        ax.axvspan(start, max(stop, start), color=_MIGRATION, alpha=0.18, lw=0)
        ax.plot([start], [0.04], "^", ms=4, transform=bottom, clip_on=False, in_layout=False,
                color=_MIGRATION if bool(m["ok"]) else "#d62728")


def _mark_phases_and_events(ax: Axes, events: pd.DataFrame,
                            phases: Sequence[PhaseSpan], scheduler: str) -> None:
    for p in phases[1:]:
        ax.axvline(p.start_s, color="0.3", ls="--", lw=0.9)
    if events.empty:
        return
    mine = events[(events["scheduler"] == scheduler) & events["kind"].isin(EVENT_KINDS)]
    for e in mine.to_dict("records"):
        ax.axvline(float(e["t_s"]), color=_EVENT_COLOURS[str(e["kind"])], ls=":", lw=1.4)


def _legend(events: pd.DataFrame) -> list[Line2D | Patch]:
    palette = sns.color_palette("colorblind", 2)
    handles: list[Line2D | Patch] = [
        Line2D([], [], color=palette[0], lw=1.3, label="median per bin"),
        Line2D([], [], color=palette[1], lw=1.0, ls="--", label="p95 per bin"),
        Line2D([], [], color="#d62728", marker="x", ls="", label="failed order"),
        Patch(color=_MIGRATION, alpha=0.3, label="migration (decided..old pod gone)"),
        Line2D([], [], color="0.3", ls="--", label="phase boundary"),
    ]
    kinds = set(events["kind"]) if not events.empty else set()
    handles += [Line2D([], [], color=c, ls=":", lw=1.4, label=k)
                for k, c in _EVENT_COLOURS.items() if k in kinds]
    return handles


def _maybe_log(ax: Axes, ok: pd.DataFrame) -> None:
    """Log scale when the slow bins would flatten the rest (a 30-fold range)."""
    lat = ok["latency_ms"].astype(float)
    lat = lat[lat > 0]
    if len(lat) and float(lat.max()) > 30 * float(lat.quantile(0.05)):
        ax.set_yscale("log")


def _count(migrations: pd.DataFrame, scheduler: str) -> int:
    return 0 if migrations.empty else int((migrations["scheduler"] == scheduler).sum())
