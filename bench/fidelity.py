"""Fidelity of a Python policy model against its real counterpart on kwok.

``--policy kube_default`` (the default) is described below; ``--policy netmarks`` holds
the netmarks model against a real kube-scheduler calling ``schedulers netmarks-extender``,
``--policy firmament`` the firmament model against the ``schedulers firmament`` binder,
and any other policy with a real counterpart in the policy table (``schedulers
policies``) works the same way. Both sides get the same traffic matrix file
(``--traffic``, default: the economy's reference order mix), as the kwok backend hands
its warm-up matrix to the real schedulers as a file: what differs is then the
scheduler, not the traffic. The real schedulers are started exactly as the kwok
backend starts them (``host_schedulers``); ``--extender-mode`` overrides how an
extender learns of bindings.

Deploys the default economy (19 Deployments, 1 replica each) N times on 5 identical
kwok nodes (4 CPU / 8 GiB) under the real kube-scheduler (v1.36, default profile), and
compares the placements with the distribution of ``get_policy("kube_default")``
(estimated from 20000 model placements):

- canonical layouts (identical nodes interchangeable),
- the predicted inter-node traffic share of each layout (traffic matrix derived from
  the economy's order mix, rounded to 0.01),
- the number of the economy's dependency edges that cross nodes,
- layout *shapes* (sorted pods-per-node counts),
- per-pair co-location probabilities,

each by total variation distance (TVD). Every figure is reported beside its noise
floor: what a perfect model would score with this many real redeployments (fresh model
samples of the same size against the same reference). With ~10^6 possible layouts the
layout TVD's floor is near 1 at N=1000; the other measures have low floors.

The model's two chance parameters (queue jitter, Filter race) come from
bench/fidelity_probe.py, a separate run, so this is an out-of-sample check.

    python3 bench/fidelity.py                   # 1000 redeployments (about 30 min here)
    python3 bench/fidelity.py --deployments 200 --max-minutes 10
    python3 bench/fidelity.py --reanalyze bench/results/fidelity.json   # no cluster
    python3 bench/fidelity.py --random-ties     # kube-scheduler with a no-op extender
    python3 bench/fidelity.py --policy netmarks --deployments 100
    python3 bench/fidelity.py --policy netmarks --deployments 100 --extender-mode watch
    python3 bench/fidelity.py --policy firmament --deployments 100
    python3 bench/fidelity.py --summarise bench/results/fidelity-*.json   # side by side
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.progress import Progress

from harness.backends.k8s import KwokCluster, KwokError, PlacementRound, binaries
from harness.backends.k8s.counterparts import counterpart, require_counterpart
from harness.backends.k8s.hostsched import host_schedulers
from harness.backends.k8s.placements import place_once
from results import provenance
from schedulers import (
    canonical_layout,
    get_policy,
    inter_node_traffic,
    pods_for_economy,
    uniform_nodes,
    workload_of_pod_name,
)
from schedulers.framework import DEFAULT_QUEUE_JITTER
from schedulers.model import Node
from schedulers.network import NodeNetwork
from schedulers.registry import UnknownPolicyError, uses_traffic
from schedulers.spec import KubernetesCounterpart
from schedulers.tiebreak import DEFAULT_STRAGGLE
from schedulers.traffic import TrafficError, TrafficMatrix, traffic_from_economy
from settlers.economy import load_economy

RESULTS = Path(__file__).parent / "results" / "fidelity.json"
NODES = 5

Assignments = Mapping[str, str]


def tvd(a: Iterable[Hashable], b: Iterable[Hashable]) -> float:
    """Total variation distance between the empirical distributions of two samples."""
    ca, cb = Counter(a), Counter(b)
    na, nb = sum(ca.values()), sum(cb.values())
    return 0.5 * sum(abs(ca[k] / na - cb[k] / nb) for k in ca.keys() | cb.keys())


def distinct(samples: Iterable[Assignments], nodes: Sequence[Node]) -> int:
    """How many canonical layouts (identical nodes interchangeable) the samples hold."""
    return len({canonical_layout(x, nodes) for x in samples})


def shape(assignments: Assignments) -> tuple[int, ...]:
    return tuple(sorted(Counter(assignments.values()).values(), reverse=True))


def colocation(samples: Sequence[Assignments]) -> dict[tuple[str, str], float]:
    """P(workloads a and b share a node) for every pair, over the samples."""
    counts: Counter[tuple[str, str]] = Counter()
    for s in samples:
        by_node: dict[str, list[str]] = {}
        for pod, node in s.items():
            by_node.setdefault(node, []).append(workload_of_pod_name(pod))
        for ws in by_node.values():
            counts.update(itertools.combinations(sorted(ws), 2))
    return {k: v / len(samples) for k, v in counts.items()}


def compare(
    a: Sequence[Assignments], b: Sequence[Assignments], share: Callable[[Assignments], float]
) -> dict[str, float]:
    nodes = uniform_nodes(NODES)
    ca, cb = colocation(a), colocation(b)
    return {
        "layout_tvd": tvd(
            [canonical_layout(x, nodes) for x in a], [canonical_layout(x, nodes) for x in b]
        ),
        "traffic_share_tvd": tvd([round(share(x), 2) for x in a], [round(share(x), 2) for x in b]),
        "shape_tvd": tvd([shape(x) for x in a], [shape(x) for x in b]),
        "colocation_max_abs_diff": max(
            abs(ca.get(k, 0) - cb.get(k, 0)) for k in ca.keys() | cb.keys()
        ),
    }


# How our extender learns of bindings (--extender-mode): argv after the host command.
EXTENDER_MODES: dict[str, tuple[str, ...]] = {
    "watch": (),  # its pod watch only
    "bind": ("--bind",),  # also kube-scheduler's bind verb
    "bind-await": ("--bind", "--await-binds", "0.5"),  # and waits for earlier bindings
}


def with_mode(found: KubernetesCounterpart, mode: str) -> KubernetesCounterpart:
    """``found`` started as the policy table says ("table"), or with the extender options
    of ``mode`` (an EXTENDER_MODES key) instead of the table's."""
    if mode == "table" or found.kind != "extender" or not found.host_command:
        return found
    return dataclasses.replace(found, host_command=found.host_command[:1] + EXTENDER_MODES[mode])


def matrix_rows(traffic: TrafficMatrix) -> list[list[Any]]:
    """The matrix as JSON rows [source, destination, bytes/s] (kept with the placements,
    so --reanalyze gives the model the very matrix the real scheduler had)."""
    return [[a, b, r] for a, b, r in traffic.to_dataframe().itertuples(index=False)]


def measure_real(deployments: int, max_minutes: float, random_ties: bool,
                 policy: str = "kube_default", traffic: TrafficMatrix | None = None,
                 mode: str = "table") -> dict[str, Any]:
    """Redeploy the economy on a fresh 5-node kwok cluster under ``policy``'s real
    counterpart, started as the kwok backend starts it (with ``traffic`` as its
    --traffic file; ``mode``: see `with_mode`).

    With `random_ties`, a second kube-scheduler with the same default profile plus a
    no-op extender (the NetMARKS extender with no traffic: every score 0) places the
    pods instead: in v1.36 only the extender code path gives tied nodes a random
    tie-breaker (kubernetes/kubernetes#141024).
    """
    economy = load_economy()
    bins = binaries()
    real: list[PlacementRound] = []
    stopped = ""
    t_start = time.monotonic()
    found: KubernetesCounterpart | None
    if random_ties:
        # The NetMARKS extender with no traffic scores every node 0, behind a second
        # kube-scheduler.
        found, scheduler_name, traffic = counterpart("netmarks"), "random-ties", None
    else:
        found = with_mode(require_counterpart(policy, {}, "kwok"), mode)
        scheduler_name = found.scheduler_name
    with (
        KwokCluster.start(nodes=NODES, cpu="4", memory="8Gi", bins=bins) as cluster,
        host_schedulers(found, scheduler_name, kubeconfig=cluster.kubeconfig, context=None,
                        traffic=traffic),
    ):
        core: Any = cluster.core_v1()
        core.create_namespace({"metadata": {"name": "fidelity"}})
        with Progress() as progress:
            task = progress.add_task(f"real {policy} ({scheduler_name})", total=deployments)
            for _ in range(deployments):
                if time.monotonic() - t_start > max_minutes * 60:
                    stopped = f"time budget of {max_minutes} min reached"
                    break
                try:
                    real.append(place_once(cluster, economy, scheduler_name, "fidelity"))
                except KwokError as e:  # keep what was measured; say why it stopped
                    stopped = f"error: {e}"
                    break
                progress.advance(task)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**provenance.machine(), "load_note": _load_note(),
                    "load_average": list(os.getloadavg())},
        "versions": bins.versions(),
        "policy": "kube_default" if random_ties else policy,
        "deployments_requested": deployments,
        "scheduler": ("default profile + no-op extender" if random_ties else
                      scheduler_name if found is None or found.kind == "default" else
                      f"{scheduler_name}: {found.component}"),
        "counterpart": None if found is None else {
            "kind": found.kind, "host_command": list(found.host_command)},
        "extender_bind": "--bind" in (found.host_command if found is not None else ()),
        "extender_mode": mode,
        "traffic": None if traffic is None else {
            "source": traffic.source, "rows": matrix_rows(traffic)},
        "stopped_early": stopped,
        "real_seconds_total": time.monotonic() - t_start,
        "real_seconds_per_deployment": {
            "median": statistics.median(r.seconds for r in real) if real else None,
            "p90": _quantile([r.seconds for r in real], 0.9) if real else None,
        },
        "placements_real": [r.assignments for r in real],
    }


def cross_edges(x: Assignments, edges: Sequence[tuple[str, str]]) -> int:
    """How many dependency edges (caller, callee) of the economy cross nodes: the
    paper's inter-node transfers per order, one replica per item."""
    node = {workload_of_pod_name(p): n for p, n in x.items()}
    return sum(1 for a, b in edges if node.get(a) != node.get(b))


def analyze(measured: dict[str, Any], seed: int, model_samples: int = 20000) -> dict[str, Any]:
    """Compare the measured placements with the Python model.

    The model's distribution is estimated from `model_samples` placements (cheap), so
    the sampling noise in "real vs model" is essentially the real sample's. The noise
    floor is what a *perfect* model would score: fresh model samples of the real
    sample's size against the same reference (median and max over 10 draws).
    """
    economy = load_economy()
    pods = pods_for_economy(economy)
    nodes = uniform_nodes(NODES)
    # The layouts are judged by the economy's reference traffic (the same yardstick for
    # every policy); the model places with the matrix the real scheduler had.
    traffic = traffic_from_economy(economy)
    policy_name = measured.get("policy", "kube_default")
    given = measured.get("traffic")
    placed_with = (TrafficMatrix({(a, b): r for a, b, r in given["rows"]},
                                 source=given["source"]) if given else None)
    edges = sorted({(a, b) for a in traffic.workloads for b in traffic.neighbours(a) if a < b})
    real_a: list[dict[str, str]] = measured["placements_real"]
    n = len(real_a)

    def share(x: Assignments) -> float:
        crossing, total = inter_node_traffic(x, traffic)
        return crossing / total if total else 0.0

    def sample(size: int, seed: int, name: str = policy_name,
               **opts: Any) -> list[dict[str, str]]:
        # Everything a policy may ask for (the registry hands each what its SPEC says):
        # the kwok nodes are uniform, so every cross-node pair is alike.
        policy = get_policy(name, seed=seed, traffic=placed_with, economy=economy,
                            network=NodeNetwork.flat(source="5 uniform kwok nodes"), **opts)
        if getattr(policy, "deterministic", False):
            # One layout, whatever the seed (firmament): no need to draw it again.
            return [dict(policy.schedule(pods, nodes).assignments)] * size
        return [dict(policy.schedule(pods, nodes).assignments) for _ in range(size)]

    def metrics(a: Sequence[Assignments], b: Sequence[Assignments]) -> dict[str, float]:
        return {
            **compare(a, b, share),
            "cross_edges_tvd": tvd([cross_edges(x, edges) for x in a],
                                   [cross_edges(x, edges) for x in b]),
        }

    # A kube-scheduler with an extender (--random-ties) breaks ties uniformly: compare
    # it with the model of that code path.
    opts: dict[str, Any] = (
        {"tie_break": "random"}
        if policy_name == "kube_default" and "extender" in measured.get("scheduler", "")
        else {}
    )
    t0 = time.perf_counter()
    reference = sample(model_samples, seed, **opts)
    model_s = (time.perf_counter() - t0) / model_samples
    draws = [sample(n, seed + 1 + i, **opts) for i in range(10)]
    floors = [metrics(d, reference) for d in draws]
    # The model before the v1.36 tie-break finding: uniform ties, queue jitter 1.0.
    uniform = (sample(min(model_samples, 5000), seed, "kube_default", tie_break="random",
                      queue_jitter=1.0) if policy_name == "kube_default" else [])
    layouts_real = Counter(canonical_layout(x, nodes) for x in real_a)
    layouts_model = Counter(canonical_layout(x, nodes) for x in reference[:n])
    co_real, co_model = colocation(real_a), colocation(reference)
    pairs = sorted(
        co_real.keys() | co_model.keys(),
        key=lambda k: -abs(co_real.get(k, 0) - co_model.get(k, 0)),
    )
    half = n // 2
    return {
        **{k: v for k, v in measured.items() if k != "placements_real"},
        "deployments": n,
        "nodes": NODES,
        "node_capacity": {"cpu": "4", "memory": "8Gi"},
        "economy": economy.name,
        "model": {"policy": policy_name, "samples": model_samples, "seed": seed, **opts,
                  "queue_jitter": DEFAULT_QUEUE_JITTER, "straggle": DEFAULT_STRAGGLE},
        "model_seconds_per_deployment": model_s,
        "distinct_layouts": {
            "real": len(layouts_real), "model_same_n": len(layouts_model),
            # Over the 10 noise-floor draws of the real sample's size: one draw's count
            # is itself a random number.
            "model_same_n_draws": {"median": statistics.median(distinct(d, nodes) for d in draws),
                                   "min": min(distinct(d, nodes) for d in draws),
                                   "max": max(distinct(d, nodes) for d in draws)},
        },
        "most_frequent_layout_share": {
            "real": layouts_real.most_common(1)[0][1] / n,
            "model_same_n": layouts_model.most_common(1)[0][1] / n,
        },
        "mean_inter_node_share": {
            "real": statistics.fmean(share(x) for x in real_a),
            "model": statistics.fmean(share(x) for x in reference),
            "model_same_n": statistics.fmean(share(x) for x in reference[:n]),
            **({"uniform_ties_model": statistics.fmean(share(x) for x in uniform)}
               if uniform else {}),
        },
        "mean_cross_edges": {
            "real": statistics.fmean(cross_edges(x, edges) for x in real_a),
            "model": statistics.fmean(cross_edges(x, edges) for x in reference),
            **({"uniform_ties_model": statistics.fmean(cross_edges(x, edges) for x in uniform)}
               if uniform else {}),
            "edges": len(edges),
        },
        "real_vs_model": metrics(real_a, reference),
        "noise_floor": {
            k: {"median": statistics.median(f[k] for f in floors),
                "max": max(f[k] for f in floors)}
            for k in floors[0]
        },
        **({"real_vs_uniform_ties_model": metrics(real_a, uniform)} if uniform else {}),
        "real_first_half_vs_second_half": (
            metrics(real_a[:half], real_a[half:]) if half >= 10 else {}
        ),
        "colocation_largest_differences": [
            {"pair": "+".join(k), "real": co_real.get(k, 0.0), "model": co_model.get(k, 0.0)}
            for k in pairs[:8]
        ],
        "shapes": {
            "real": _counts(shape(x) for x in real_a),
            "model": _counts(shape(x) for x in reference[:n]),
        },
        "placements_real": real_a,
    }


def results_path(policy: str, mode: str) -> Path:
    """bench/results/fidelity.json for kube_default, fidelity-<policy>[-<mode>].json
    otherwise."""
    if policy == "kube_default":
        return RESULTS
    suffix = "" if mode == "table" else f"-{mode}"
    return RESULTS.with_name(f"fidelity-{policy}{suffix}.json")


def load_traffic(path: Path | None) -> TrafficMatrix:
    """The matrix both sides place with: ``path``, or the economy's reference mix."""
    if path is None:
        matrix = traffic_from_economy(load_economy())
        matrix.source = ("the default economy's reference order mix "
                         "(schedulers example-traffic)")
        return matrix
    return TrafficMatrix.from_file(path)


_SUMMARY_KEYS = ("policy", "date", "scheduler", "counterpart", "deployments",
                 "stopped_early", "distinct_layouts", "most_frequent_layout_share",
                 "mean_inter_node_share", "mean_cross_edges", "real_vs_model", "noise_floor",
                 "real_seconds_per_deployment")


def summarise(paths: Sequence[Path]) -> dict[str, Any]:
    """The figures of several fidelity results side by side (one row each, by file)."""
    rows = []
    for path in paths:
        r = json.loads(path.read_text())
        rows.append({"file": path.name, **{k: r.get(k) for k in _SUMMARY_KEYS},
                     "load_average": (r.get("machine") or {}).get("load_average"),
                     "load_note": (r.get("machine") or {}).get("load_note")})
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "runs": rows}


def _variant(row: Mapping[str, Any]) -> str:
    if row.get("policy") in (None, "kube_default"):
        return "kube_default" + (" (no-op extender)" if "extender" in (row.get("scheduler")
                                                                      or "") else "")
    argv = (row.get("counterpart") or {}).get("host_command") or []
    return str(row["policy"]) + (f" (`{' '.join(argv)}`)" if "extender" in (
        row.get("scheduler") or "") else "")


def markdown(summary: Mapping[str, Any]) -> str:
    """Two tables from a `summarise` result: the layouts and shares, then the TVDs
    beside their noise floors (median of 10 perfect-model draws of the same size)."""
    runs = summary["runs"]
    out = ["| policy: model vs real | redeployments | distinct layouts real | model (same n, "
           "median of 10) | top layout real | top layout model | inter-node share real | "
           "model | load (1/5/15 min) | file (bench/results/) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        d, top, sh = r["distinct_layouts"], r["most_frequent_layout_share"], r[
            "mean_inter_node_share"]
        load = "/".join(f"{x:.1f}" for x in r["load_average"]) if r.get("load_average") else "?"
        model_n = (d.get("model_same_n_draws") or {}).get("median", d["model_same_n"])
        out.append(f"| {_variant(r)} | {r['deployments']} | {d['real']} | "
                   f"{model_n:g} | {100 * top['real']:.0f} % | "
                   f"{100 * top['model_same_n']:.0f} % | {100 * sh['real']:.1f} % | "
                   f"{100 * sh['model']:.1f} % | {load} | {r['file']} |")
    out += ["", "| policy: TVD real vs model (noise floor) | inter-node share | crossing "
            "edges | layouts | layout shape | max co-location difference | file |",
            "|---|---|---|---|---|---|---|"]
    keys = ("traffic_share_tvd", "cross_edges_tvd", "layout_tvd", "shape_tvd",
            "colocation_max_abs_diff")
    for r in runs:
        cells = [f"{r['real_vs_model'][k]:.3f} ({r['noise_floor'][k]['median']:.3f})"
                 for k in keys]
        out.append(f"| {_variant(r)} | " + " | ".join(cells) + f" | {r['file']} |")
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--deployments", type=int, default=1000)
    ap.add_argument(
        "--max-minutes",
        type=float,
        default=45.0,
        help="stop the real-cluster rounds early after this long (default 45)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model-samples", type=int, default=20000,
                    help="placements drawn from the model as its reference (default 20000)")
    ap.add_argument("--policy", default="kube_default",
                    help="the policy whose model is held against its real counterpart on "
                         "kwok (one with a counterpart: see `schedulers policies`; default "
                         "kube_default)")
    ap.add_argument("--traffic", type=Path, metavar="FILE",
                    help="traffic matrix (CSV/Parquet/YAML) given to both the model and the "
                         "real scheduler's --traffic, for policies that use traffic "
                         "(default: the economy's reference order mix, as `schedulers "
                         "example-traffic` writes it)")
    ap.add_argument("--extender-mode", choices=("table", *EXTENDER_MODES), default="table",
                    help="for an extender counterpart (netmarks): how it learns of "
                         "bindings. watch: its pod watch only; bind: also the bind verb "
                         "(--bind); bind-await: and it waits for earlier bindings before "
                         "scoring (--await-binds 0.5); table (default): as the policy "
                         "table starts it")
    ap.add_argument("--out", type=Path,
                    help="result JSON (default bench/results/fidelity.json for kube_default, "
                         "fidelity-<policy>[-<mode>].json otherwise)")
    ap.add_argument(
        "--reanalyze",
        type=Path,
        metavar="JSON",
        help="skip the cluster: compare the placements recorded in JSON with the model again",
    )
    ap.add_argument(
        "--random-ties",
        action="store_true",
        help="measure a kube-scheduler (default profile) whose ties are broken at random",
    )
    ap.add_argument("--summarise", type=Path, nargs="+", metavar="JSON",
                    help="no cluster: print the figures of these results side by side as "
                         "Markdown, and write them to --out (default "
                         "bench/results/fidelity-summary.json)")
    args = ap.parse_args(argv)
    if args.summarise:
        summary = summarise(args.summarise)
        out = args.out or RESULTS.with_name("fidelity-summary.json")
        out.write_text(json.dumps(summary, indent=1, default=str))
        print(markdown(summary), end="")
        return 0
    try:
        found = counterpart(args.policy)
    except UnknownPolicyError:
        found = None
    if found is None and not args.reanalyze:
        ap.error(f"--policy {args.policy}: no real counterpart to hold its model against; "
                 "`schedulers policies` lists the policies and their counterparts")
    if args.random_ties and args.policy != "kube_default":
        ap.error("--random-ties measures kube_default's extender code path; drop --policy")
    if args.deployments < 1:
        ap.error(f"--deployments must be >= 1, got {args.deployments}")
    args.out = args.out or results_path(args.policy, args.extender_mode)
    # On SIGTERM unwind normally, so the kwok cluster is deleted on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    if args.reanalyze:
        measured = json.loads(args.reanalyze.read_text())
    else:
        try:
            traffic = load_traffic(args.traffic) if uses_traffic(args.policy) else None
        except (TrafficError, OSError) as exc:
            ap.error(f"--traffic {args.traffic}: {exc}")
        measured = measure_real(args.deployments, args.max_minutes, args.random_ties,
                                args.policy, traffic, args.extender_mode)
        # Keep the measured placements even if the analysis below fails.
        raw = args.out.with_suffix(".raw.json")
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(json.dumps(measured, indent=1, default=str))
    if not measured["placements_real"]:
        print(f"no real deployment finished: {measured['stopped_early']}", file=sys.stderr)
        return 1
    result = analyze(measured, args.seed, args.model_samples)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps({k: v for k, v in result.items() if k not in ("placements_real", "traffic")},
                     indent=1))
    return 0


def _load_note() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f}/{five:.1f}/{fifteen:.1f} at the end (shared machine)"


def _quantile(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def _counts(xs: Iterable[tuple[int, ...]]) -> dict[str, int]:
    return {"-".join(map(str, k)): v for k, v in Counter(xs).most_common()}


if __name__ == "__main__":
    raise SystemExit(main())
