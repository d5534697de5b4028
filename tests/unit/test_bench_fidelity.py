"""The analysis functions of bench/fidelity.py (model vs real counterpart) and
bench/fidelity_extender_probe.py (what the NetMARKS extender saw when it scored)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from schedulers import TrafficMatrix, policy_spec, uniform_nodes

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


fidelity = _load("fidelity")
probe = _load("fidelity_extender_probe")


def test_distinct_counts_layouts_up_to_renaming_identical_nodes() -> None:
    nodes = uniform_nodes(3)
    a = {"water-0": "node-1", "grain-0": "node-1", "fish-0": "node-2"}
    renamed = {"water-0": "node-3", "grain-0": "node-3", "fish-0": "node-1"}
    split = {"water-0": "node-1", "grain-0": "node-2", "fish-0": "node-2"}
    assert fidelity.distinct([a, renamed], nodes) == 1
    assert fidelity.distinct([a, renamed, split], nodes) == 2


def test_extender_modes_replace_only_the_extender_options() -> None:
    found = policy_spec("netmarks").kubernetes
    assert found is not None
    assert fidelity.with_mode(found, "table") is found
    assert fidelity.with_mode(found, "watch").host_command == ("netmarks-extender",)
    assert fidelity.with_mode(found, "bind").host_command == ("netmarks-extender", "--bind")
    assert fidelity.with_mode(found, "bind-await").host_command == (
        "netmarks-extender", "--bind", "--await-binds", "0.5")
    firmament = policy_spec("firmament").kubernetes
    assert firmament is not None
    assert fidelity.with_mode(firmament, "watch") is firmament  # not an extender


def test_results_path_per_policy_and_mode() -> None:
    assert fidelity.results_path("kube_default", "table").name == "fidelity.json"
    assert fidelity.results_path("netmarks", "table").name == "fidelity-netmarks.json"
    assert fidelity.results_path("netmarks", "watch").name == "fidelity-netmarks-watch.json"


def test_the_policy_flag_refuses_a_policy_without_a_counterpart(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        fidelity.main(["--policy", "random"])
    assert exc.value.code == 2
    assert "no real counterpart" in capsys.readouterr().err


def _result(policy: str, distinct_real: int, host_command: list[str]) -> dict[str, Any]:
    tvds = {k: 0.1 for k in ("traffic_share_tvd", "cross_edges_tvd", "layout_tvd",
                             "shape_tvd", "colocation_max_abs_diff")}
    return {
        "policy": policy, "date": "2026-12-02T08:00:00+00:00", "deployments": 100,
        "scheduler": "netmarks-scheduler: NetMARKS extender",
        "counterpart": {"kind": "extender", "host_command": host_command},
        "machine": {"load_average": [4.0, 3.5, 3.0]},
        "distinct_layouts": {"real": distinct_real, "model_same_n": 12,
                             "model_same_n_draws": {"median": 11.5, "min": 11, "max": 15}},
        "most_frequent_layout_share": {"real": 0.17, "model_same_n": 0.26},
        "mean_inter_node_share": {"real": 0.38, "model": 0.367},
        "real_vs_model": tvds, "noise_floor": {k: {"median": 0.07, "max": 0.09} for k in tvds},
    }


def test_summary_table_puts_the_runs_side_by_side(tmp_path: Path) -> None:
    paths = []
    for name, distinct_real, argv in (("a", 38, ["netmarks-extender"]),
                                      ("b", 20, ["netmarks-extender", "--bind"])):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(_result("netmarks", distinct_real, argv)))
    table = fidelity.markdown(fidelity.summarise(paths))
    rows = [line for line in table.splitlines() if line.startswith("| netmarks")]
    assert rows[0].startswith("| netmarks (`netmarks-extender`) | 100 | 38 | 11.5 | 17 % |")
    assert rows[0].endswith("| 4.0/3.5/3.0 | a.json |")
    assert rows[1].startswith("| netmarks (`netmarks-extender --bind`) | 100 | 20 |")
    assert "| 0.100 (0.070) |" in rows[2]


TRAFFIC = TrafficMatrix({("bread", "flour"): 900.0})


def _call(round_: int, pod: str, workload: str,
          seen: dict[str, tuple[str, str]]) -> Any:
    return probe.Call(round_, pod, workload, ["node-1", "node-2"], seen)


def test_staleness_counts_peers_scored_earlier_but_not_yet_seen() -> None:
    bound = {"ns/flour-a": ("node-2", "flour"), "ns/fish-a": ("node-1", "fish"),
             "ns/bread-a": ("node-2", "bread"), "ns/old": ("node-1", "flour")}
    calls = [
        _call(0, "ns/flour-a", "flour", {}),
        _call(0, "ns/fish-a", "fish", {}),  # flour-a missing, not a neighbour of fish
        # flour-a (a neighbour) and fish-a missing: bread would have gone to node-2.
        _call(0, "ns/bread-a", "bread", {}),
        # The next round: a pod of the previous one is still in the cache.
        _call(1, "ns/bread-b", "bread", {"ns/old": ("node-1", "flour")}),
    ]
    got = probe.staleness(calls, bound, TRAFFIC)
    assert got["calls"] == 4
    assert got["mean_missing_peers"] == pytest.approx(3 / 4)
    assert got["share_calls_missing_a_peer"] == pytest.approx(2 / 4)
    assert got["share_calls_missing_a_neighbour"] == pytest.approx(1 / 4)
    # bread-a: stale answer [0, 0] vs true [0, 10]; bread-b: stale [10, 0] vs [0, 0].
    assert got["share_calls_answer_changed"] == pytest.approx(2 / 4)
    assert got["share_calls_with_leftovers"] == pytest.approx(1 / 4)
    assert got["missing_peers_histogram"] == {0: 2, 1: 1, 2: 1}


def test_staleness_of_a_retried_pod_does_not_count_itself() -> None:
    bound = {"ns/flour-a": ("node-2", "flour")}
    calls = [_call(0, "ns/flour-a", "flour", {}), _call(0, "ns/flour-a", "flour", {})]
    assert probe.staleness(calls, bound, TRAFFIC)["mean_missing_peers"] == 0


def test_replay_places_in_the_measured_order() -> None:
    from settlers.economy import load_economy

    items = [i.name for i in load_economy()]
    # Exact replays with no traffic: kube_default's spreading, ties at random; the
    # first pod of each order is placed first, on an empty cluster.
    orders = [items, list(reversed(items))]
    layouts = probe.replay(orders, TrafficMatrix(), seed=1)
    assert len(layouts) == 2
    assert all(sorted(x) == sorted(f"{i}-0" for i in items) for x in layouts)
