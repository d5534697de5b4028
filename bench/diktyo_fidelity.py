"""Fidelity of the diktyo model against the real Diktyo plugins on kwok.

Reads the real placements of a kwok run (``placements.parquet`` of
``harness run --backend kwok -s diktyo ...``: the real kube-scheduler-diktyo) and
places the same redeployments with the model (same topology, same creation order per
redeployment, the same warm-up traffic for minBandwidth), then compares, for three
settings of the model's queue (see schedulers.diktyo.plugins): ``default`` (the
measured scheduling cycle and bind lag), ``no_lag`` (every placed dependency seen at
once) and ``batch`` (the whole redeployment waiting together, sorted by the AppGroup):

- distinct layouts among the redeployments (identical nodes interchangeable);
- the predicted inter-node traffic share (the run's warm-up matrix);
- the share of the economy's dependency edges (item -> input) on one node, and in one
  zone;
- the total variation distance (TVD) of the layouts and of the per-edge placement class
  (same node / same zone / cross zone), model against real, and the layouts' TVD of the
  model against itself with other seeds (its noise floor at this many redeployments).

    python3 bench/diktyo_fidelity.py RUN_DIR      # writes bench/results/diktyo-fidelity.json
    python3 bench/diktyo_fidelity.py RUN_DIR --out other.json
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from results.topology import resolve_topology
from schedulers import canonical_layout, get_policy, inter_node_traffic
from schedulers.creation import in_creation_order
from schedulers.diktyo.costs import ZONE_LABEL
from schedulers.model import Node, pods_for_economy
from schedulers.traffic import TrafficMatrix
from settlers.economy import Economy, load_economy

RESULTS = Path(__file__).parent / "results" / "diktyo-fidelity.json"


def tvd(a: Iterable[Hashable], b: Iterable[Hashable]) -> float:
    ca, cb = Counter(a), Counter(b)
    na, nb = sum(ca.values()), sum(cb.values())
    return 0.5 * sum(abs(ca[k] / na - cb[k] / nb) for k in ca.keys() | cb.keys())


def edge_classes(assign: Mapping[str, str], economy: Economy,
                 zone: Mapping[str, str]) -> list[str]:
    """Per dependency edge (one replica each here): same-node, same-zone or cross-zone."""
    out = []
    for consumer, source, _ in economy.edges():
        a, b = assign[f"{consumer}-0"], assign[f"{source}-0"]
        out.append("same-node" if a == b else
                   "same-zone" if zone.get(a) == zone.get(b) else "cross-zone")
    return out


def summary(rounds: list[Mapping[str, str]], nodes: list[Node], economy: Economy,
            traffic: TrafficMatrix) -> dict[str, Any]:
    zone = {n.name: n.labels.get(ZONE_LABEL, "") for n in nodes}
    layouts = [canonical_layout(a, nodes) for a in rounds]
    cross = [inter_node_traffic(a, traffic) for a in rounds]
    classes = [c for a in rounds for c in edge_classes(a, economy, zone)]
    count = Counter(classes)
    return {
        "redeployments": len(rounds),
        "distinct_layouts": len(set(layouts)),
        "top_layout_share": round(Counter(layouts).most_common(1)[0][1] / len(layouts), 3),
        "inter_node_share": round(sum(c for c, _ in cross) / sum(t for _, t in cross), 4),
        "edges_same_node": round(count["same-node"] / len(classes), 4),
        "edges_same_zone_or_node": round((count["same-node"] + count["same-zone"])
                                         / len(classes), 4),
        "_layouts": layouts,
        "_classes": classes,
    }


def model_rounds(frame: pd.DataFrame, economy: Economy, nodes: list[Node], network: Any,
                 traffic: TrafficMatrix, queue: Mapping[str, float], seed: int,
                 options: Mapping[str, Any]) -> list[dict[str, str]]:
    pods = pods_for_economy(economy)
    out = []
    for _, row in frame.iterrows():
        order = str(row["creation_order"]).split(",")
        policy = get_policy("diktyo", traffic=traffic, seed=seed + int(row["deployment"]),
                            network=network, economy=economy, **queue, **options)
        out.append(policy.schedule(in_creation_order(pods, order), nodes).assignments)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a kwok run's results folder with diktyo in it")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    from schedulers.policies.diktyo import DEFAULT_BIND_LAG, DEFAULT_QUEUE_CYCLE

    variants = {
        "default": {"queue_cycle": DEFAULT_QUEUE_CYCLE, "bind_lag": DEFAULT_BIND_LAG},
        "no_lag": {"queue_cycle": DEFAULT_QUEUE_CYCLE, "bind_lag": 0.0},
        "batch": {"queue_cycle": math.inf, "bind_lag": 0.0},
    }
    manifest = json.loads((args.run / "manifest.json").read_text())
    config = manifest["config"]
    economy = load_economy(config.get("economy"))
    topology = resolve_topology(config["topology"], nodes=config["nodes"], link=config["link"])
    nodes = topology.model_nodes()
    network = topology.network()
    traffic = TrafficMatrix.from_file(args.run / "traffic.parquet")
    options = (config.get("scheduler_options") or {}).get("diktyo", {})
    placements = pd.read_parquet(args.run / "placements.parquet")
    real_frame = placements[placements.scheduler == "diktyo"].sort_values("deployment")
    real = [json.loads(a) for a in real_frame["assignments"]]
    report: dict[str, Any] = {
        "source": str(args.run), "topology": topology.name, "order": config.get("order"),
        "options": options, "real": summary(real, nodes, economy, traffic), "model": {}}
    for key, queue in variants.items():
        rounds = model_rounds(real_frame, economy, nodes, network, traffic, queue,
                              manifest["config"]["seed"] * 1000, options)
        got = summary(rounds, nodes, economy, traffic)
        got["tvd_layouts"] = round(tvd(got["_layouts"], report["real"]["_layouts"]), 3)
        got["tvd_edge_classes"] = round(tvd(got["_classes"], report["real"]["_classes"]), 4)
        got["queue"] = {k: ("inf" if math.isinf(v) else v) for k, v in queue.items()}
        # The noise floor: the same model with other seeds against itself.
        again = summary(model_rounds(real_frame, economy, nodes, network, traffic, queue,
                                     manifest["config"]["seed"] * 1000 + 10**6, options),
                        nodes, economy, traffic)
        got["tvd_layouts_floor"] = round(tvd(got["_layouts"], again["_layouts"]), 3)
        report["model"][key] = got
    for part in [report["real"], *report["model"].values()]:
        part.pop("_layouts")
        part.pop("_classes")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
