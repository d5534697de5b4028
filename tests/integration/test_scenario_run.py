"""A two-phase scenario end to end on the emulated cluster: real pods, real moves.

The traffic shifts from flour (a simple chain) to coal (shared supply chains) after
the warm-up taught the schedulers only flour's traffic; the NetMARKS rebalancer must
then move at least one running pod, while the baseline moves none; every order due
ends as a record, answered or with its error (none lost).
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from harness.backends.registry import backend_for, describe
from harness.scenario import run_scenario
from harness.scenario.runner import phase_seed
from order_app.timeline import planned_orders
from results.config import build_config
from results.manifest import new_manifest
from results.scenario import Scenario, done_schedulers, read_scenario_tables
from results.store import ResultsStore

pytestmark = pytest.mark.slow

SCENARIO = Scenario.model_validate({
    "name": "two-phase", "rebalance_interval_s": 3, "warmup_s": 3, "static_twins": False,
    "rebalancers": {"netmarks": {"max_moves": 2, "window_s": 6}},
    "phases": [
        {"name": "chain", "duration_s": 8,
         "orders": {"items": ["flour"], "sizes": [4096], "rate": 4}},
        {"name": "shared", "duration_s": 16,
         "orders": {"items": ["coal"], "sizes": [4096], "rate": 4}},
    ]})


def test_two_phase_scenario_moves_pods_and_loses_no_order(tmp_path: Path) -> None:
    cfg = build_config(overrides={"nodes": 2, "schedulers": ["netmarks"], "protocols": ["http"],
                                  "items": ["flour", "coal"], "sizes": [4096]})
    assert cfg.schedulers == ["kube_default", "netmarks"]
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    asyncio.run(run_scenario(cfg, store, backend_for(cfg), SCENARIO))

    assert done_schedulers(store.root) == ["kube_default", "netmarks"]
    t = read_scenario_tables(store.root)
    moves = t["migrations"]
    mine = moves[moves["scheduler"] == "netmarks"]
    assert (mine["ok"] & (mine["reason"] == "rebalance")).sum() >= 1, mine.to_dict("records")
    assert (moves["scheduler"] == "kube_default").sum() == 0      # the baseline stays put
    for m in mine[mine["ok"]].to_dict("records"):
        # make-before-break: the new pod is ready before the old one is gone; evict: after.
        first, second = (("ready_s", "done_s") if m["strategy"] == "make-before-break"
                         else ("done_s", "ready_s"))
        assert m["decided_s"] <= m[first] <= m[second] + 1e-6, m
        assert m["src_node"] != m["dst_node"] and m["new_pod"] != m["pod"]
        # The new pod is in the layout after the move, the old one is not.
        after = t["placements"][(t["placements"]["scheduler"] == "netmarks")
                                & (t["placements"]["t_s"] >= m["done_s"])]
        assert m["new_pod"] in set(after["pod"]) and m["pod"] not in set(after["pod"])

    orders = t["orders"]
    for scheduler in cfg.schedulers:
        for k, phase in enumerate(SCENARIO.phases):
            got = orders[(orders["scheduler"] == scheduler) & (orders["phase"] == phase.name)]
            planned = planned_orders(phase.orders.items, phase.orders.sizes,
                                     rate=phase.orders.rate, duration_s=phase.duration_s,
                                     seed=phase_seed(cfg.seed, k))
            assert len(got) == len(planned), (scheduler, phase.name)
    failed = orders[~orders["ok"]]
    assert (failed["error"] != "").all() and failed["latency_ms"].isna().all()
    assert orders.loc[orders["ok"], "latency_ms"].map(math.isfinite).all()
    # The baseline neither moved nor failed an order.
    assert orders.loc[orders["scheduler"] == "kube_default", "ok"].all()

    traffic = t["traffic"]
    assert sorted(traffic["phase"].unique()) == ["chain", "shared"]
    assert (traffic["bytes"] > 0).all()
    assert (traffic["inter_node_bytes"] + traffic["intra_node_bytes"] == traffic["bytes"]).all()
    kinds = set(t["events"]["kind"])
    assert {"phase", "rebalance"} <= kinds


EVENTS = Scenario.model_validate({
    "name": "events", "rebalance_interval_s": 4, "warmup_s": 2, "standby_nodes": ["node-3"],
    "phases": [
        {"name": "steady", "duration_s": 5,
         "orders": {"items": ["bread"], "sizes": [4096], "rate": 4}},
        {"name": "churn", "duration_s": 14,
         "orders": {"items": ["bread"], "sizes": [4096], "rate": 4},
         "events": [{"at_s": 0, "kind": "add_node", "node": "node-3"},
                    {"at_s": 1, "kind": "drain", "node": "node-1"},
                    {"at_s": 2, "kind": "degrade", "node": "node-2", "latency_ms": 20}]},
    ]})


def test_drain_add_node_and_degrade_events(tmp_path: Path) -> None:
    cfg = build_config(overrides={"nodes": 3, "schedulers": [], "protocols": ["http"],
                                  "items": ["bread"], "sizes": [4096]})
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    asyncio.run(run_scenario(cfg, store, backend_for(cfg), EVENTS))

    t = read_scenario_tables(store.root)
    p = t["placements"]
    day_one = p[p["t_s"] == 0]
    assert "node-3" not in set(day_one["node"])          # standby until added
    assert "node-1" in set(day_one["node"])
    last = p[p["t_s"] == p["t_s"].max()]
    assert "node-1" not in set(last["node"])             # drained: everything left it
    moves = t["migrations"]
    assert len(moves) == (day_one["node"] == "node-1").sum()
    assert (moves["reason"] == "drain").all() and moves["ok"].all()
    assert (moves["strategy"] == "evict").all() and (moves["src_node"] == "node-1").all()
    assert set(t["events"]["kind"]) >= {"phase", "add_node", "drain", "degrade"}
    assert "rebalance" not in set(t["events"]["kind"])   # kube_default has no rebalancer
    degrade = t["events"][t["events"]["kind"] == "degrade"]
    assert degrade["detail"].tolist() == ["degrade node-2's links to 20 ms"]
    assert 6.5 <= float(degrade["t_s"].iloc[0]) < 9     # phase start 5 s + at_s 2 s
    # (that links change is tested in test_emulated_moves; here: it happened on time)
    assert t["orders"]["ok"].mean() > 0.5
