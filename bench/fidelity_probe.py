"""Measure the two sources of chance in the real kube-scheduler's default profile.

With identical pods on identical nodes every score ties, and kube-scheduler v1.36
breaks ties by its heap order over the feasible-node list (no randomness without an
extender; see schedulers/tiebreak.py). What varies from one redeployment to the next
is then only:

1. the *queue order*: the order the pods reach the scheduling queue (controllers
   create them in parallel), modelled by ``queue_order(jitter=...)``;
2. the *Filter race*: the order the parallel Filter goroutines report the feasible
   nodes, modelled by ``FilterRace(straggle=...)``.

This script deploys the default economy N times under a second kube-scheduler with
the default profile, run at ``--v=10``: its log has one "Attempting to schedule pod"
line per scheduling cycle (the true cycle order; Scheduled events are written by the
asynchronous binding goroutines and can be out of order) and, per cycle, every node's
final score in feasible-list order. From that it estimates both parameters and writes
``bench/results/fidelity-probe.json``. bench/fidelity.py then checks the resulting
model against 1000 redeployments under the cluster's own default-scheduler.

    python3 bench/fidelity_probe.py                  # 100 redeployments, ~3 min
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.progress import Progress

from harness.backends.k8s import ExtraScheduler, KwokCluster, binaries
from harness.backends.k8s.placements import place_once
from results import provenance
from schedulers import pods_for_economy, queue_order
from settlers.economy import load_economy

RESULTS = Path(__file__).parent / "results" / "fidelity-probe.json"
NAMESPACE = "probe"
SCHEDULER = "probe-scheduler"
NODES = 5
JITTER_GRID = [round(0.30 + 0.05 * i, 2) for i in range(15)]  # 0.30 .. 1.00

_ATTEMPT = re.compile(r'"Attempting to schedule pod" pod="' + NAMESPACE + r'/([^"]+)"')
_SCORE = re.compile(
    r'"Calculated node\'s final score for pod" pod="' + NAMESPACE + r'/([^"]+)" node="([^"]+)"'
)


def workload(pod_name: str) -> str:
    """``<deployment>-<replicaset hash>-<suffix>`` -> the Deployment's name."""
    return pod_name.rsplit("-", 2)[0]


def parse_cycles(log_lines: Sequence[str]) -> list[dict[str, Any]]:
    """One entry per scheduling cycle: the pod's workload and the feasible-node order."""
    cycles: list[dict[str, Any]] = []
    pod = ""
    for line in log_lines:
        if m := _ATTEMPT.search(line):
            pod = m.group(1)
            cycles.append({"workload": workload(pod), "feasible": []})
        elif (m := _SCORE.search(line)) and cycles and m.group(1) == pod:
            cycles[-1]["feasible"].append(m.group(2))
    return cycles


def classify(order: Sequence[str], snapshot: Sequence[str], start: int) -> str:
    """How the Filter step listed the nodes, relative to the snapshot rotated to `start`.

    The Filter step starts where the previous cycle stopped (``nextStartNodeIndex``),
    which stays put while every cycle checks all nodes, so an undisturbed list is the
    snapshot rotated to that index (on identical nodes a rotation only renames them).
    Kinds: 'in order', 'one to the end' (one node moved last: its goroutine finished
    last) or 'other'.
    """
    rotated = _rotated(snapshot, start)
    if list(order) == rotated:
        return "in order"
    if [x for x in rotated if x != order[-1]] == list(order[:-1]):
        return "one to the end"
    return "other"


def modal_start(orders: Sequence[Sequence[str]], snapshot: Sequence[str]) -> int:
    """The rotation most cycles' lists follow: the scheduler's ``nextStartNodeIndex``."""
    starts = Counter(
        start for o in orders for start in range(len(snapshot))
        if list(o) == _rotated(snapshot, start)
    )
    return starts.most_common(1)[0][0] if starts else 0


def _rotated(snapshot: Sequence[str], start: int) -> list[str]:
    return [*snapshot[start:], *snapshot[:start]]


def inversions(positions: Sequence[int]) -> int:
    return sum(1 for i, a in enumerate(positions) for b in positions[i + 1:] if a > b)


def fit_jitter(rounds: Sequence[Sequence[str]], items: Sequence[str]) -> dict[str, Any]:
    """The queue jitter whose inversion-count distribution is closest (TVD) to the
    measured cycle orders'."""
    pods = pods_for_economy(load_economy())
    real = Counter(min(12, inversions([items.index(w) for w in r])) for r in rounds)
    fits = {}
    for jitter in JITTER_GRID:
        rng = random.Random(1)
        sim = Counter(
            min(12, inversions([items.index(p.workload) for p in queue_order(pods, rng, jitter)]))
            for _ in range(4000)
        )
        fits[jitter] = 0.5 * sum(
            abs(real[k] / len(rounds) - sim[k] / 4000) for k in real.keys() | sim.keys()
        )
    best = min(fits, key=lambda j: fits[j])
    return {
        "best": best,
        "tvd_by_jitter": fits,
        "mean_inversions_real": sum(k * v for k, v in real.items()) / len(rounds),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--deployments", type=int, default=100)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    economy = load_economy()
    items = [i.name for i in economy]
    if any(i.replicas != 1 for i in economy):
        print("the probe expects one replica per item", file=sys.stderr)
        return 2
    bins = binaries()
    snapshot = [f"node-{i}" for i in range(1, NODES + 1)]
    with KwokCluster.start(nodes=NODES, cpu="4", memory="8Gi", bins=bins) as cluster:
        cluster.core_v1().create_namespace({"metadata": {"name": NAMESPACE}})
        probe = ExtraScheduler.start(cluster, SCHEDULER, verbosity=10)
        with Progress() as progress:
            task = progress.add_task("probe kube-scheduler (--v=10)", total=args.deployments)
            for _ in range(args.deployments):
                place_once(cluster, economy, SCHEDULER, NAMESPACE)
                progress.advance(task)
        lines = probe.log.read_text(errors="replace").splitlines()
    cycles = parse_cycles(lines)
    per_round = len(items)
    if len(cycles) != per_round * args.deployments:
        print(f"expected {per_round * args.deployments} cycles in the log, found {len(cycles)}",
              file=sys.stderr)
        return 1
    rounds = [[c["workload"] for c in cycles[i:i + per_round]]
              for i in range(0, len(cycles), per_round)]
    full = [c["feasible"] for c in cycles if len(c["feasible"]) == NODES]
    start = modal_start(full, snapshot)
    classified = [classify(o, snapshot, start) for o in full]
    kinds = Counter(classified)
    scored = sum(kinds.values())
    # P(order) = (1 - s) + s/n in order, s/n for each of the n-1 visible moves:
    # the maximum-likelihood s from the first two kinds.
    moved = kinds["one to the end"] / max(1, kinds["one to the end"] + kinds["in order"])
    straggle = min(1.0, moved * NODES / (NODES - 1))
    # Which node straggles, by its position in the rotated list (moving the last one
    # changes nothing, so that position never shows).
    movers = Counter(
        (snapshot.index(o[-1]) - start) % NODES
        for o, kind in zip(full, classified, strict=True) if kind == "one to the end"
    )
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": provenance.machine(),
        "versions": bins.versions(),
        "deployments": args.deployments,
        "cycles": len(cycles),
        "feasible_order": {k: v / scored for k, v in kinds.items()},
        "feasible_order_top": Counter(
            "".join(n.rsplit("-", 1)[-1] for n in c["feasible"]) for c in cycles
        ).most_common(10),
        "fitted_straggle": round(straggle, 3),
        "moved_to_the_end_by_position": [movers[i] for i in range(NODES)],
        "start_position": start,
        "feasible_orders": ["".join(n.rsplit("-", 1)[-1] for n in c["feasible"]) for c in cycles],
        "queue_order": fit_jitter(rounds, items),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
