"""The placement figures docs/schedulers.md quotes, computed (no cluster, no timing).

    python3 bench/schedule_table.py            # writes bench/results/schedule-table.json
    python3 bench/schedule_table.py --report   # print the docs table for that file

What `harness schedule --order file` prints (the pods in the economy's creation order),
for the default economy on 5 identical nodes with the shipped traffic matrix
(schedulers/data/settlers2-traffic.csv), for every scheduler and two node sizes: the
mean predicted share of the traffic that crosses nodes and the number of distinct
canonical layouts. Deterministic (seeds 0..N-1, as `harness
schedule --seed 0`), so a rerun on any machine gives the same file apart from the date;
tests/unit/test_docs_numbers.py holds the docs' numbers against it.
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
    TrafficMatrix,
    canonical_layout,
    example_traffic_path,
    get_policy,
    inter_node_traffic,
    pods_for_economy,
    uniform_nodes,
)
from settlers.economy import DEFAULT_ECONOMY, load_economy
from settlers.quantity import parse_cpu, parse_memory

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "schedule-table.json"
SCHEDULERS = ["kube_default", "netmarks", "firmament", "optimal"]
# (label in the docs, CPU per node, deployments per stochastic scheduler)
CASES = [("4 CPU / 8 GiB (everything fits on one node)", "4", 1000),
         ("600m CPU (at most 6 pods per node)", "600m", 200)]
NODES = 5
MEMORY = "8Gi"


def place(scheduler: str, cpu: str, deployments: int) -> dict[str, Any]:
    """`harness schedule -s SCHEDULER --node-cpu CPU --deployments N --seed 0 --order file`,
    in figures."""
    econ = load_economy(None)
    nodes = uniform_nodes(NODES, cpu_m=parse_cpu(cpu), memory=parse_memory(MEMORY))
    pods = pods_for_economy(econ)
    matrix = TrafficMatrix.from_file(example_traffic_path(DEFAULT_ECONOMY))
    layouts: Counter[str] = Counter()
    shares: list[float] = []
    info: dict[str, Any] = {}
    for d in range(deployments):
        policy = get_policy(scheduler, traffic=matrix, seed=d)
        result = policy.schedule(pods, nodes)
        if result.unschedulable:
            raise SystemExit(f"{scheduler} on {cpu}: unschedulable pods {result.unschedulable}")
        layouts[canonical_layout(result.assignments, nodes)] += 1
        crossing, total = inter_node_traffic(result.assignments, matrix)
        shares.append(crossing / total)
        if "status" in result.info:
            info = {"status": str(result.info["status"]),
                    "gap": float(result.info.get("gap", 0.0))}
        if policy.deterministic:  # same input, same answer (as harness schedule)
            break
    return {"deployments": 1 if len(shares) == 1 else deployments,
            "distinct_layouts": len(layouts),
            "inter_node_share_mean": statistics.mean(shares),
            "inter_node_share_min": min(shares), "inter_node_share_max": max(shares),
            **info}


def compute() -> dict[str, Any]:
    cases: dict[str, Any] = {}
    for label, cpu, deployments in CASES:
        cases[cpu] = {"label": label, "node_cpu": cpu, "node_memory": MEMORY, "nodes": NODES,
                      "schedulers": {s: place(s, cpu, deployments) for s in SCHEDULERS}}
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "python3 bench/schedule_table.py",
            "equivalent": "harness schedule -s S --node-cpu CPU --deployments N --seed 0 "
                          "--order file",
            "economy": DEFAULT_ECONOMY,
            "traffic": "schedulers/data/settlers2-traffic.csv",
            "seed": 0, "cases": cases}


def _cell(scheduler: str, r: dict[str, Any]) -> str:
    share = f"{r['inter_node_share_mean']:.0%}".replace("%", " %")
    n = r["deployments"]
    if scheduler == "optimal":
        gap = r.get("gap", 0.0)
        where = "; all on one node" if r["inter_node_share_mean"] == 0 else ""
        return f"{share} ({r.get('status', '?')}, gap {gap:.0%}{where})".replace(
            "gap 0%", "gap 0").replace("%;", " %;").replace("%)", " %)")
    if n == 1:
        return f"{share}, 1 layout"
    if r["distinct_layouts"] == n:
        return f"{share}, every layout distinct"
    return f"{share}, {r['distinct_layouts']} layouts / {n}"


def markdown(results: dict[str, Any]) -> str:
    """The table in docs/schedulers.md ("What to expect ...")."""
    lines = ["| nodes | " + " | ".join(SCHEDULERS) + " |",
             "|---|" + "---|" * len(SCHEDULERS)]
    for case in results["cases"].values():
        cells = [_cell(s, case["schedulers"][s]) for s in SCHEDULERS]
        lines.append(f"| {case['label']} | " + " | ".join(cells) + " |")
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
