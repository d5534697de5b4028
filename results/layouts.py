"""Which layouts to measure, and with what weights: the experiment's sampling plan.

A scheduler's expected response time is E_s = sum over layouts L of p_s(L) * mu(L),
where p_s is the frequency of L among the scheduler's N redeployments and mu(L) the
mean response time measured on L. The plan reduces this to *units*: each unit is one
layout, and every estimate is the plain mean over a scheduler's units of the value
measured on the unit's layout.

- census: when a scheduler's distinct layouts fit in its share of the budget, its
  units are all N redeployments, so the unit mean is exactly sum p_s(L) mu(L).
- pps: otherwise its units are m redeployments drawn uniformly with replacement,
  i.e. layouts drawn with probability proportional to their frequency (PPS with
  replacement); the unit mean is the Hansen-Hurwitz estimator, unbiased for E_s.

The budget is shared water-filling style: schedulers that need fewer layouts than an
equal share take only what they need, the rest is split among the others. Layouts
drawn by several schedulers are measured once.

The experiment records the plan it used (units in ``units.parquet``, the summary in
the manifest's ``plan``, :func:`measurement_plan`); the analysis reads it from there
and derives it with :func:`measurement_plan` only for runs from before the record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from results.manifest import MeasurementPlan, SchedulerPlan

__all__ = ["layout_id", "measurement_order", "measurement_plan", "plan_units"]


def layout_id(canonical: str) -> str:
    """A short stable name for a canonical layout (used in part file names)."""
    return "L" + hashlib.sha1(canonical.encode()).hexdigest()[:10]


def plan_units(
    layouts: Mapping[str, Sequence[str]], budget: int, seed: int
) -> pd.DataFrame:
    """``layouts``: scheduler -> layout id of each redeployment, in order.

    Returns one row per unit: scheduler, unit, deployment, layout_id, estimator.
    """
    if budget < 1:
        raise ValueError("the layout budget must be at least 1")
    distinct = {s: set(ids) for s, ids in layouts.items()}
    union = set().union(*distinct.values()) if distinct else set()
    census = set(layouts) if len(union) <= budget else _census_schedulers(distinct, budget)
    sampled = [s for s in layouts if s not in census]
    need = sum(len(distinct[s]) for s in census)
    share = max(1, (budget - need) // len(sampled)) if sampled else 0

    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    for scheduler, ids in layouts.items():
        if scheduler in census:
            picks = np.arange(len(ids))
            estimator = "census"
        else:
            picks = rng.integers(0, len(ids), size=share)
            estimator = "pps"
        for unit, deployment in enumerate(picks):
            rows.append(
                {
                    "scheduler": scheduler,
                    "unit": unit,
                    "deployment": int(deployment),
                    "layout_id": ids[int(deployment)],
                    "estimator": estimator,
                }
            )
    return pd.DataFrame(rows, columns=["scheduler", "unit", "deployment", "layout_id", "estimator"])


def _census_schedulers(distinct: Mapping[str, set[str]], budget: int) -> set[str]:
    census: set[str] = set()
    while True:
        rest = [s for s in distinct if s not in census]
        if not rest:
            return census
        left = budget - sum(len(distinct[s]) for s in census)
        share = left // len(rest)
        fits = {s for s in rest if len(distinct[s]) <= share}
        if not fits:
            return census
        census |= fits


def measurement_order(units: pd.DataFrame) -> list[str]:
    """Distinct layouts to measure, round-robin over schedulers in unit order.

    Interleaving means a run stopped early still has layouts of every scheduler.
    """
    queues = [
        list(dict.fromkeys(group["layout_id"]))
        for _, group in units.groupby("scheduler", sort=False)
    ]
    order: dict[str, None] = {}
    for position in range(max((len(q) for q in queues), default=0)):
        for queue in queues:
            if position < len(queue):
                order.setdefault(queue[position], None)
    return list(order)


def measurement_plan(units: pd.DataFrame, *, layout_budget: int, seed: int) -> MeasurementPlan:
    """The plan ``units`` (of :func:`plan_units`) stand for, as the manifest records it."""
    schedulers = {
        str(scheduler): SchedulerPlan.model_validate(
            {"estimator": str(group["estimator"].iloc[0]), "units": len(group)})
        for scheduler, group in units.groupby("scheduler", sort=False)
    }
    return MeasurementPlan(layout_budget=layout_budget, seed=seed,
                           layouts=measurement_order(units), schedulers=schedulers)
