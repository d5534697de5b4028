"""The sampling plan: census when layouts fit the budget, unbiased PPS draws otherwise."""

from __future__ import annotations

import numpy as np

from results.layouts import layout_id, measurement_order, plan_units


def test_layout_id_is_stable_and_short() -> None:
    assert layout_id("a,b|c") == layout_id("a,b|c") != layout_id("a|b,c")
    assert len(layout_id("x")) == 11


def test_census_when_everything_fits() -> None:
    layouts = {"kube_default": ["A", "B", "A", "C"], "netmarks": ["A", "A", "A", "D"]}
    units = plan_units(layouts, budget=4, seed=1)
    assert set(units["estimator"]) == {"census"}
    for s, ids in layouts.items():
        assert list(units[units["scheduler"] == s]["layout_id"]) == ids


def test_budget_is_shared_water_filling() -> None:
    # netmarks needs 2 layouts (census); kube_default has 50 and gets the rest as draws.
    layouts = {"kube_default": [f"K{i}" for i in range(50)], "netmarks": ["A", "B"] * 25}
    units = plan_units(layouts, budget=10, seed=3)
    est = units.groupby("scheduler")["estimator"].first().to_dict()
    assert est == {"kube_default": "pps", "netmarks": "census"}
    assert (units["scheduler"] == "kube_default").sum() == 8
    assert len(measurement_order(units)) <= 10


def test_pps_draws_are_unbiased_for_the_frequency_weighted_mean() -> None:
    rng = np.random.default_rng(0)
    ids = [f"L{int(i)}" for i in rng.zipf(1.6, size=400) % 60]
    value = {f"L{i}": float(i) for i in range(60)}
    truth = np.mean([value[i] for i in ids])
    estimates = []
    for seed in range(400):
        units = plan_units({"s": ids}, budget=8, seed=seed)
        assert set(units["estimator"]) == {"pps"}
        estimates.append(np.mean([value[i] for i in units["layout_id"]]))
    # The mean of the Hansen-Hurwitz estimates converges to the truth.
    assert abs(np.mean(estimates) - truth) < 4 * np.std(estimates) / np.sqrt(len(estimates))


def test_measurement_order_interleaves_schedulers() -> None:
    layouts = {"a": ["A1", "A2", "A3"], "b": ["B1", "B1", "B2"]}
    units = plan_units(layouts, budget=10, seed=0)
    assert measurement_order(units) == ["A1", "B1", "A2", "B2", "A3"]


def test_shared_layouts_are_measured_once() -> None:
    units = plan_units({"a": ["X", "Y"], "b": ["Y", "X"]}, budget=5, seed=0)
    assert sorted(measurement_order(units)) == ["X", "Y"]
