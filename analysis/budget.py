"""Where the measurement's variance is: variance components, effective sample size, and
the time budget's allocation (``results.allocation``) when the run had one.

Every run gets the components table: per scheduler (over the layouts of its units) the
variance of log response time between layouts and between a layout's orders, the
intra-layout correlation rho, and Kish's effective number of orders per cell (n layouts
x m orders are worth n m / (1 + (m - 1) rho) independent orders). With rho near 1 more
orders per layout buy almost nothing and only more layouts narrow the intervals; near 0
the reverse.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import render
from analysis.tables import RunData
from results.allocation import effective_orders, spent_seconds, variance_components

__all__ = ["budget_section", "variance_table"]


def variance_table(run: RunData) -> pd.DataFrame:
    """One row per scheduler (and one over all measured layouts): the components of log
    response time, rho, layouts, mean orders per cell per layout, effective orders."""
    ok = run.ok_samples()
    rows: list[dict[str, Any]] = []
    groups = {**run.units_by_scheduler(), "all measured layouts": None}
    for name, unit_layouts in groups.items():
        layouts = None if unit_layouts is None else sorted(set(unit_layouts))
        comp = variance_components(ok, layouts)
        mine = ok if layouts is None else ok[ok["layout_id"].isin(layouts)]
        n = int(mine["layout_id"].nunique()) if not mine.empty else 0
        m = (float(mine.groupby(["layout_id", "item", "size", "protocol"]).size().mean())
             if n else math.nan)
        rows.append({
            "scheduler": name, "layouts": n, "orders_per_cell_per_layout": m,
            "between_layouts": comp.between, "within_layout": comp.within,
            "rho": comp.rho if math.isfinite(comp.between) else math.nan,
            "effective_orders_per_cell": effective_orders(n, m, comp.rho)
            if math.isfinite(comp.between) and n else math.nan,
            "orders_per_cell": n * m if n else 0,
            "cells": comp.cells,
        })
    return pd.DataFrame(rows)


def budget_section(run: RunData, out: Path) -> str:
    """The report's "Measurement budget and variance" section (writes its table)."""
    table = variance_table(run)
    shown = table.copy()
    for col in ("orders_per_cell_per_layout", "effective_orders_per_cell", "orders_per_cell"):
        shown[col] = [_num(v, 1) for v in shown[col]]
    for col in ("between_layouts", "within_layout", "rho"):
        shown[col] = [_num(v, 4 if col != "rho" else 2) for v in shown[col]]
    text = render.write_table(
        table, shown, out, "variance_components",
        "Variance of log response time between layouts and between a layout's orders "
        "(mean over cells), intra-layout correlation rho, and Kish's effective orders "
        "per cell.")
    alloc = run.manifest.allocation
    if alloc is None:
        how = (f"No time budget: {run.config.repetitions} orders per cell on each of up "
               f"to {run.config.layout_budget} layouts, as configured.")
    else:
        how = (f"Time budget {alloc.budget_s:.0f} s of measurement. A pilot of "
               f"{alloc.pilot_layouts} layouts at {alloc.pilot_repetitions} orders per cell "
               f"took {alloc.pilot_seconds:.0f} s and gave s_b2 = {alloc.between:.4f}, "
               f"s_w2 = {alloc.within:.4f} (rho {alloc.rho:.2f}, {alloc.cells} cells), "
               f"c1 = {alloc.per_layout_s:.2f} s per layout and c2 = "
               f"{alloc.per_round_s:.2f} s per round of orders. Decision: "
               f"{alloc.repetitions} order(s) per cell on the layouts after the pilot, "
               f"{alloc.layouts} layouts in all ({alloc.why}). Measured: "
               f"{_measured(run)} layouts in {spent_seconds(run.samples):.0f} s (the "
               "measurement stops before a layout once the time is spent). Each "
               "scheduler's units were then cut to the layouts measured (a prefix of its "
               "draws, which is itself a sample of the same kind).")
    return f"""## Measurement budget and variance

{how}
Layouts are the first stage of the sampling and orders within a layout the second;
the intervals resample both (units, then each layout's orders in blocks of neighbours
in time). The components below come from all the run's data.

{text}"""


def _measured(run: RunData) -> int:
    return int(run.samples["layout_id"].nunique()) if not run.samples.empty else 0


def _num(value: object, digits: int) -> str:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"
