"""How much the Deployments' creation order moves the placements (no cluster, no timing).

    python3 bench/creation_order.py            # writes bench/results/creation-order.json
    python3 bench/creation_order.py --report   # print the docs table for that file

For each creation order (`harness run --order` / `harness schedule --order`: file,
reverse, random) and each of kube_default, netmarks and random placement: 1000
redeployments of the default economy on 5 identical nodes with the shipped traffic
matrix (schedulers/data/settlers2-traffic.csv), as `harness schedule -s S --order O
--deployments 1000 --seed 0` places them. Recorded per (order, scheduler): the share
of redeployments in which each hop (consumer <- input) crosses nodes, flour's hop
(flour <- grain) among them, the mean predicted share of the traffic that crosses
nodes, and the number of distinct canonical layouts. Deterministic (seeds 0..N-1 and
the orders `schedulers.creation` draws from seed 0), so a rerun on any machine gives
the same file apart from the date; docs/experiment.md ("Creation order") quotes it
and tests/unit/test_docs_numbers.py holds the quotes against it.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schedulers import (
    CREATION_ORDERS,
    CreationOrder,
    TrafficMatrix,
    canonical_layout,
    example_traffic_path,
    get_policy,
    in_creation_order,
    inter_node_traffic,
    pods_for_economy,
    uniform_nodes,
)
from schedulers.creation import CreationOrderMode
from settlers.economy import DEFAULT_ECONOMY, load_economy

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "creation-order.json"
SCHEDULERS = ["kube_default", "netmarks", "random"]
DEPLOYMENTS = 1000
NODES = 5
SEED = 0
FLOUR_HOP = "flour<-grain"


def measure(order: CreationOrderMode, scheduler: str,
            deployments: int = DEPLOYMENTS) -> dict[str, Any]:
    """`harness schedule -s SCHEDULER --order ORDER --deployments N --seed 0`, in figures."""
    econ = load_economy(None)
    nodes = uniform_nodes(NODES)
    pods = pods_for_economy(econ)
    workloads = [item.name for item in econ]
    hops = [(item.name, src) for item in econ for src in item.inputs]
    matrix = TrafficMatrix.from_file(example_traffic_path(DEFAULT_ECONOMY))
    creation = CreationOrder(order, SEED)
    crossed: Counter[str] = Counter()
    layouts: Counter[str] = Counter()
    shares: list[float] = []
    for d in range(deployments):
        policy = get_policy(scheduler, traffic=matrix, seed=SEED + d)
        queue = in_creation_order(pods, creation.for_deployment(d, workloads))
        result = policy.schedule(queue, nodes)
        if result.unschedulable:
            raise SystemExit(f"{scheduler}: unschedulable pods {result.unschedulable}")
        placed = result.assignments
        for consumer, source in hops:  # one replica each in the default economy
            crossed[f"{consumer}<-{source}"] += placed[f"{consumer}-0"] != placed[f"{source}-0"]
        layouts[canonical_layout(placed, nodes)] += 1
        crossing, total = inter_node_traffic(placed, matrix)
        shares.append(crossing / total)
    hop_crossing = {f"{c}<-{s}": crossed[f"{c}<-{s}"] / deployments for c, s in hops}
    return {"flour_hop_crossing": hop_crossing[FLOUR_HOP],
            "inter_node_share_mean": statistics.mean(shares),
            "distinct_layouts": len(layouts),
            "hop_crossing_min": min(hop_crossing.values()),
            "hop_crossing_max": max(hop_crossing.values()),
            "hop_crossing": hop_crossing}


def compute() -> dict[str, Any]:
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "python3 bench/creation_order.py",
            "equivalent": "harness schedule -s S --order O --deployments 1000 --seed 0",
            "economy": DEFAULT_ECONOMY, "nodes": NODES, "deployments": DEPLOYMENTS,
            "traffic": "schedulers/data/settlers2-traffic.csv", "seed": SEED,
            "orders": {o: {s: measure(o, s) for s in SCHEDULERS} for o in CREATION_ORDERS}}


def _pct(x: float) -> str:
    return f"{x * 100:.0f} %"


def markdown(results: dict[str, Any]) -> str:
    """The table in docs/experiment.md ("Creation order")."""
    lines = ["| `--order` | kube_default: flour's hop crosses nodes | kube_default: hops "
             "crossing (min-max) | kube_default: traffic across nodes | netmarks: traffic "
             "across nodes | random placement: flour's hop, traffic |",
             "|---|---|---|---|---|---|"]
    for order, by in results["orders"].items():
        kd, nm, rnd = by["kube_default"], by["netmarks"], by["random"]
        lines.append(
            f"| {order} | {_pct(kd['flour_hop_crossing'])} | "
            f"{kd['hop_crossing_min'] * 100:.0f}-{_pct(kd['hop_crossing_max'])} | "
            f"{_pct(kd['inter_node_share_mean'])} | {_pct(nm['inter_node_share_mean'])} | "
            f"{_pct(rnd['flour_hop_crossing'])}, {_pct(rnd['inter_node_share_mean'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--report", action="store_true",
                    help="print the docs table for --out; compute nothing")
    args = ap.parse_args(argv)
    if args.report:
        print(markdown(json.loads(args.out.read_text())), end="")
        return
    results = compute()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(markdown(results), end="")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
