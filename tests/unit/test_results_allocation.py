"""Two-stage sampling under a time budget: components, costs, the choice, the cut."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from results.allocation import (
    Components,
    Costs,
    allocate,
    costs,
    effective_orders,
    pilot_layouts,
    truncated_units,
    variance_components,
)


def _samples(layouts: int, m: int, sb: float, sw: float, seed: int = 0,
             cells: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(cells):
        for lid in range(layouts):
            a = rng.normal(0, math.sqrt(sb))
            for rep in range(m):
                y = 2.0 + c + a + rng.normal(0, math.sqrt(sw))
                rows.append({"layout_id": f"L{lid}", "item": f"i{c}", "size": 16,
                             "protocol": "http", "repeat": rep, "latency_ms": math.exp(y),
                             "ok": True})
    return pd.DataFrame(rows)


def test_variance_components_recover_known_between_and_within() -> None:
    comp = variance_components(_samples(layouts=400, m=5, sb=0.09, sw=0.04))
    assert comp.between == pytest.approx(0.09, rel=0.15)
    assert comp.within == pytest.approx(0.04, rel=0.05)
    assert comp.rho == pytest.approx(0.09 / 0.13, rel=0.1)
    assert (comp.cells, comp.layouts) == (2, 400)


def test_variance_components_skip_failed_orders_and_cells_without_replication() -> None:
    frame = _samples(layouts=3, m=1, sb=0.1, sw=0.1)
    assert math.isnan(variance_components(frame).between)  # m = 1: no within estimate
    frame = _samples(layouts=30, m=3, sb=0.1, sw=0.1)
    frame.loc[frame.index[:5], "ok"] = False
    frame.loc[frame.index[:5], "latency_ms"] = 0.0  # would be log(0) if counted
    assert math.isfinite(variance_components(frame).within)
    assert variance_components(frame, ["L0", "L1"]).layouts == 2


def test_costs_split_chunk_time_into_per_layout_and_per_round() -> None:
    frame = _samples(layouts=4, m=4, sb=0.0, sw=0.0, cells=1)
    frame["latency_ms"] = 250.0  # 4 rounds x 1 cell x 0.25 s = 1 s of orders per chunk
    frame["chunk_seconds"] = 4.0
    price = costs(frame)
    assert price.per_layout == pytest.approx(3.0)
    assert price.per_round == pytest.approx(0.25)
    assert math.isnan(costs(frame.drop(columns="chunk_seconds")).per_layout)


def test_allocate_follows_the_square_root_rule_and_the_time_left() -> None:
    a = allocate(Components(0.01, 0.16, 4, 6), Costs(4.0, 1.0, 6), remaining_s=100.0,
                 pilot=6, pilot_repetitions=5, available=50, budget_s=130.0,
                 pilot_seconds=30.0)
    # m* = sqrt(4 x 0.16 / (1 x 0.01)) = 8; 100 s / (4 + 8) s = 8 more layouts
    assert (a.repetitions, a.layouts) == (8, 14)
    b = allocate(Components(0.16, 0.01, 4, 6), Costs(4.0, 1.0, 6), remaining_s=100.0,
                 pilot=6, pilot_repetitions=5, available=20, budget_s=130.0,
                 pilot_seconds=30.0)
    assert b.repetitions == 1 and b.layouts == 20  # 20 more would fit; the plan has 20
    c = allocate(Components(0.0, 0.1, 4, 6), Costs(4.0, 1.0, 6), remaining_s=10.0,
                 pilot=6, pilot_repetitions=5, available=50, budget_s=40.0,
                 pilot_seconds=30.0)
    assert c.repetitions == 15 and c.layouts == 6  # capped m; nothing more fits
    d = allocate(Components(math.nan, math.nan, 0, 2), Costs(4.0, 1.0, 2),
                 remaining_s=50.0, pilot=2, pilot_repetitions=5, available=9,
                 budget_s=60.0, pilot_seconds=10.0)
    assert d.repetitions == 5 and "no usable" in d.why


def test_pilot_and_effective_orders() -> None:
    assert pilot_layouts(2, 100) == 6 and pilot_layouts(3, 100) == 9
    assert pilot_layouts(2, 4) == 4
    assert effective_orders(10, 5, 0.0) == 50
    assert effective_orders(10, 5, 1.0) == pytest.approx(10)


def test_truncated_units_keep_a_prefix_per_scheduler() -> None:
    units = pd.DataFrame({
        "scheduler": ["a"] * 5 + ["b"] * 3,
        "unit": [0, 1, 2, 3, 4, 0, 1, 2],
        "deployment": range(8),
        "layout_id": ["X", "Y", "X", "Z", "X", "X", "X", "X"],
        "estimator": ["pps"] * 5 + ["census"] * 3,
    })
    cut = truncated_units(units, {"X", "Y"})
    # a: stops at its first unmeasured layout Z, although its last unit (X) was measured
    assert list(cut[cut["scheduler"] == "a"]["layout_id"]) == ["X", "Y", "X"]
    assert set(cut[cut["scheduler"] == "a"]["estimator"]) == {"pps"}
    b = cut[cut["scheduler"] == "b"]
    assert len(b) == 3 and set(b["estimator"]) == {"census"}  # whole: still a census
    only_x = truncated_units(units, {"X"})
    assert list(only_x["layout_id"]) == ["X"] * 4
    assert list(only_x["estimator"]) == ["pps"] + ["census"] * 3
