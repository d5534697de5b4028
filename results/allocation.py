"""Two-stage sampling under a time budget: more layouts, or more orders per layout?

A scheduler's mean response time is estimated in two stages: layouts are drawn (the
first stage, ``results.layouts``), and each drawn layout is measured with ``m`` orders
per cell (item x size x protocol; the second stage). Per cell, on log response time
(so cells of 16 B and 1 MiB weigh alike and a reduction is a difference)::

    y_lj = mu + a_l + e_lj,   var(a_l) = s_b2 (between layouts), var(e_lj) = s_w2

and the variance of the mean over n layouts with m orders each is
``s_b2 / n + s_w2 / (n m)``. Measuring costs ``c1`` seconds per layout whatever m is (the
relayout, its checks, the sweep's unrecorded first order per cell) and ``c2`` seconds
per round of m (one order of every cell). For a fixed time T = n (c1 + c2 m) the
variance is smallest at ``m* = sqrt(c1 s_w2 / (c2 s_b2))`` (Cochran, *Sampling
Techniques*, 3rd ed., section 10.6), and n follows from the time left.

The experiment measures a pilot (the first layouts of the plan, at the configured
repetitions), estimates the components and costs from it (:func:`variance_components`,
:func:`costs`), chooses m and n (:func:`allocate`) and records the decision
(:class:`Allocation`, the manifest's ``allocation``). The components are estimated
per cell by one-way ANOVA (unbalanced: Searle's n0) and pooled as the mean over cells;
``effective_orders`` is the Kish effective sample size of one cell's n x m orders.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "PLAN_CAP",
    "Allocation",
    "Components",
    "Costs",
    "allocate",
    "costs",
    "effective_orders",
    "pilot_layouts",
    "spent_seconds",
    "truncated_units",
    "variance_components",
]

# Under a time budget the plan draws this many layouts at most; the time decides how
# many of them, in measurement order, are measured (a prefix of a PPS sample is one).
PLAN_CAP = 1000
# More orders per layout than this many times the pilot's buy little when the layouts'
# own spread is near zero and risk a plan with too few layouts to show their spread.
M_MAX_FACTOR = 3
CELL = ["item", "size", "protocol"]


@dataclass(frozen=True)
class Components:
    """Pooled variance components of log response time (per cell, mean over cells)."""

    between: float  # s_b2: between layouts
    within: float  # s_w2: between orders of one layout
    cells: int  # cells with at least two layouts and some within-layout replication
    layouts: int  # layouts with data

    @property
    def rho(self) -> float:
        """Intra-layout correlation: the share of the variance that is the layouts'."""
        total = self.between + self.within
        return self.between / total if total > 0 else 0.0


@dataclass(frozen=True)
class Costs:
    """Seconds of measurement: per layout whatever m is, and per round of orders."""

    per_layout: float  # c1
    per_round: float  # c2
    layouts: int  # layouts the figures come from


class Allocation(BaseModel):
    """How a run's time budget was spent (the manifest's ``allocation``)."""

    model_config = ConfigDict(extra="forbid")

    budget_s: float = Field(description="measurement time of this experiment (seconds)")
    pilot_layouts: int
    pilot_repetitions: int
    pilot_seconds: float = Field(description="measurement time the pilot took")
    between: float = Field(description="s_b2, between-layout variance of log response time")
    within: float = Field(description="s_w2, within-layout (between orders) variance")
    rho: float = Field(description="intra-layout correlation s_b2 / (s_b2 + s_w2)")
    cells: int = Field(description="cells the components were pooled over")
    per_layout_s: float = Field(description="c1: seconds per layout whatever the orders")
    per_round_s: float = Field(description="c2: seconds per round of one order per cell")
    repetitions: int = Field(description="m: orders per cell for the layouts after the pilot")
    layouts: int = Field(description="n: layouts planned in all, the pilot's included")
    available_layouts: int = Field(description="layouts the plan offered")
    why: str = Field(description="the decision in words")


def pilot_layouts(schedulers: int, available: int) -> int:
    """Layouts in the pilot: three per scheduler (round-robin in the plan's order, so
    every scheduler's spread is seen), at least six, at most what the plan offers."""
    return min(available, max(6, 3 * schedulers))


def variance_components(samples: pd.DataFrame, layouts: Iterable[str] | None = None
                        ) -> Components:
    """Pooled components from successful orders (``latency_ms`` > 0), optionally only
    of ``layouts``. Cells without two layouts or without replication are skipped."""
    ok = _ok(samples)
    if layouts is not None:
        ok = ok[ok["layout_id"].isin(set(layouts))]
    if ok.empty:
        return Components(math.nan, math.nan, 0, 0)
    ok = ok.assign(y=np.log(ok["latency_ms"].astype(float)))
    betweens, withins = [], []
    for _, cell in ok.groupby(CELL, sort=False):
        by = cell.groupby("layout_id")["y"]
        n_l, mean_l = by.count().to_numpy(float), by.mean().to_numpy(float)
        k, total = len(n_l), float(n_l.sum())
        if k < 2 or total <= k:
            continue
        grand = float(cell["y"].mean())
        ssw = float(((cell["y"] - cell["layout_id"].map(by.mean())) ** 2).sum())
        ssb = float((n_l * (mean_l - grand) ** 2).sum())
        msw, msb = ssw / (total - k), ssb / (k - 1)
        n0 = (total - float((n_l ** 2).sum()) / total) / (k - 1)
        betweens.append(max(0.0, (msb - msw) / n0))
        withins.append(msw)
    if not betweens:
        return Components(math.nan, math.nan, 0, int(ok["layout_id"].nunique()))
    return Components(float(np.mean(betweens)), float(np.mean(withins)), len(betweens),
                      int(ok["layout_id"].nunique()))


def costs(samples: pd.DataFrame, layouts: Iterable[str] | None = None) -> Costs:
    """c1 and c2 from the chunks' wall time (``chunk_seconds``) and their orders' own
    time: a chunk of m rounds took ``c1_chunk + m c2_chunk``, with ``c2_chunk`` its
    recorded orders' summed response time over m. Per layout the chunks (protocols,
    loads) add up; the means over layouts are returned (a budget is spent on the total,
    so a relayout that moves many pods or a data-plane restart is part of the price)."""
    if samples.empty or "chunk_seconds" not in samples:
        return Costs(math.nan, math.nan, 0)
    frame = samples if layouts is None else samples[samples["layout_id"].isin(set(layouts))]
    keys = ["layout_id", "protocol"] + (["load_rps"] if "load_rps" in frame else [])
    per_layout: dict[str, list[float]] = {}
    for key, chunk in frame.groupby(keys, sort=False):
        lid = str(key[0])
        m = int(chunk["repeat"].max()) + 1
        seconds = float(chunk["chunk_seconds"].iloc[0])
        orders = float(chunk["latency_ms"].fillna(0).sum()) / 1000.0
        c2 = orders / m
        c1 = max(0.0, seconds - orders)
        acc = per_layout.setdefault(lid, [0.0, 0.0])
        acc[0] += c1
        acc[1] += c2
    if not per_layout:
        return Costs(math.nan, math.nan, 0)
    c1s, c2s = zip(*per_layout.values(), strict=True)
    return Costs(float(np.mean(c1s)), float(np.mean(c2s)), len(per_layout))


def allocate(components: Components, price: Costs, *, remaining_s: float, pilot: int,
             pilot_repetitions: int, available: int, budget_s: float, pilot_seconds: float
             ) -> Allocation:
    """m and n for the time left after the pilot (see the module doc)."""
    m_max = max(2, M_MAX_FACTOR * pilot_repetitions)
    c1, c2 = price.per_layout, price.per_round
    sb, sw = components.between, components.within
    if not all(math.isfinite(x) for x in (c1, c2, sb, sw)) or c2 <= 0:
        m, why = pilot_repetitions, ("the pilot gave no usable variance or cost estimate; "
                                     "kept the configured repetitions")
    elif sb <= 0:
        m, why = m_max, ("no variance between layouts in the pilot: more orders per layout "
                         f"up to the cap ({M_MAX_FACTOR}x the pilot's)")
    else:
        exact = math.sqrt(c1 * sw / (c2 * sb))
        m = min(m_max, max(1, round(exact)))
        why = (f"m* = sqrt(c1 s_w2 / (c2 s_b2)) = sqrt({c1:.2f} x {sw:.4f} / ({c2:.2f} x "
               f"{sb:.4f})) = {exact:.2f}, rounded" + (" and capped" if m < round(exact)
                                                      else ""))
    per_layout = (c1 + c2 * m) if math.isfinite(c1 + c2 * m) and c1 + c2 * m > 0 else math.inf
    more = int(max(0.0, remaining_s) // per_layout) if math.isfinite(per_layout) else 0
    n = min(available, pilot + more)
    why += (f"; {remaining_s:.0f} s left after the pilot buy {more} more layouts at "
            f"{per_layout:.1f} s each" if math.isfinite(per_layout) else "")
    if pilot + more > available:
        why += f" (the plan offered {available})"
    return Allocation(
        budget_s=budget_s, pilot_layouts=pilot, pilot_repetitions=pilot_repetitions,
        pilot_seconds=round(pilot_seconds, 3), between=_finite(sb), within=_finite(sw),
        rho=_finite(components.rho), cells=components.cells, per_layout_s=_finite(c1),
        per_round_s=_finite(c2), repetitions=int(m), layouts=int(n),
        available_layouts=available, why=why,
    )


def effective_orders(layouts: int, repetitions: float, rho: float) -> float:
    """Kish's effective sample size of one cell: n m orders in n clusters of m, worth
    n m / (1 + (m - 1) rho) independent orders."""
    if layouts <= 0 or not math.isfinite(rho):
        return math.nan
    return layouts * repetitions / (1 + (repetitions - 1) * rho)


def truncated_units(units: pd.DataFrame, measured: Sequence[str] | set[str]) -> pd.DataFrame:
    """Each scheduler's units up to its first unit whose layout was not measured.

    Units are draws in order (PPS with replacement, or a census's redeployments in
    order), so a prefix is itself a sample of the same kind; dropping units in the
    middle would favour frequent layouts, which are measured first.
    """
    keep = set(measured)
    parts = []
    for _, group in units.groupby("scheduler", sort=False):
        group = group.sort_values("unit")
        missing = ~group["layout_id"].isin(keep).to_numpy()
        stop = int(np.argmax(missing)) if missing.any() else len(group)
        part = group.iloc[:stop].copy()
        if stop < len(group):
            part["estimator"] = "pps"  # a census cut short is a sample of redeployments
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else units


def spent_seconds(samples: pd.DataFrame) -> float:
    """Measurement time of the stored chunks (each chunk's rows carry its wall time,
    ``chunk_seconds``); 0 when there are none or they are from before the record."""
    if samples.empty or "chunk_seconds" not in samples:
        return 0.0
    keys = [k for k in ("layout_id", "protocol", "load_rps") if k in samples]
    return float(samples.groupby(keys)["chunk_seconds"].first().sum())


def _ok(samples: pd.DataFrame) -> pd.DataFrame:
    if samples.empty:
        return samples
    ok = samples[samples["ok"].astype(bool)]
    return ok[ok["latency_ms"].astype(float) > 0]


def _finite(x: float) -> float:
    return float(x) if math.isfinite(x) else float("nan")
