"""`harness run --backend kwok --scenario`: day one placed by the real kube-scheduler on a
kwok control plane, a drain whose evictions and rebinds go through the API, and the
emulated cluster following with real pod processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from harness.backends.registry import backend_for, describe
from harness.scenario import run_scenario
from results.config import build_config
from results.manifest import new_manifest
from results.scenario import Scenario, read_scenario_tables
from results.store import ResultsStore

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DRAIN = Scenario.model_validate({
    "name": "kwok-drain", "rebalance_interval_s": 5, "warmup_s": 2,
    "phases": [
        {"name": "steady", "duration_s": 5,
         "orders": {"items": ["bread"], "sizes": [4096], "rate": 3}},
        {"name": "drained", "duration_s": 12,
         "orders": {"items": ["bread"], "sizes": [4096], "rate": 3},
         "events": [{"at_s": 0, "kind": "drain", "node": "node-1"}]},
    ]})


def test_a_drain_on_kwok_moves_pods_through_the_api(k8s_binaries: object,
                                                    tmp_path: Path) -> None:
    cfg = build_config(overrides={"backend": "kwok", "nodes": 3, "schedulers": [],
                                  "protocols": ["http"], "items": ["bread"], "sizes": [4096]})
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    backend = backend_for(cfg)
    placer = backend.placer
    asyncio.run(run_scenario(cfg, store, backend, DRAIN))

    t = read_scenario_tables(store.root)
    p = t["placements"]
    day_one = p[p["t_s"] == 0]
    on_node_1 = sorted(day_one.loc[day_one["node"] == "node-1", "pod"])
    assert on_node_1, "kube-scheduler spreads 19 pods over 3 nodes: node-1 has some"
    moves = t["migrations"]
    assert sorted(moves["pod"]) == on_node_1
    assert moves["ok"].all(), moves["error"].tolist()
    assert (moves["reason"] == "drain").all() and (moves["dst_node"] != "node-1").all()
    # The replacements carry the API side's names (the next index of their item).
    for m in moves.to_dict("records"):
        item, index = m["pod"].rsplit("-", 1)
        new_item, new_index = m["new_pod"].rsplit("-", 1)
        assert new_item == item and int(new_index) > int(index)
    last = p[p["t_s"] == p["t_s"].max()]
    assert "node-1" not in set(last["node"])
    assert len(last) == len(day_one)
    # Orders kept being answered after the drain (evictions fail some, visibly).
    o = t["orders"]
    late = o[o["t_s"] > float(moves["done_s"].max()) + 2]
    assert len(late) and late["ok"].all(), late["error"].tolist()
    assert (o.loc[~o["ok"], "error"] != "").all()
    # The control plane went with the backend (run_scenario closes it).
    assert getattr(placer, "_cluster", None) is None or placer._closed  # type: ignore[attr-defined]
