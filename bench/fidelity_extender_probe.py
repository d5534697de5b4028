"""What the NetMARKS extender saw when it scored: the probe behind netmarks' fidelity.

The netmarks model scores every pod against *all* pods placed before it (kube-scheduler's
own cache has them, "assumed", the moment their cycle ends). The real extender only
knows a placement when its pod watch reports the binding, or, with ``--bind``
(``bindVerb: bind``), when kube-scheduler's binding goroutine calls it. This probe runs
the extender in this process with a recorder in front of it, behind a real
kube-scheduler on a 5-node kwok cluster, redeploys the default economy N times per
variant (without and with the bind verb) and measures per scoring call:

- *missing peers*: pods of the same redeployment scored earlier (so already assumed by
  kube-scheduler) that the extender's cache did not hold yet;
- *missing neighbours*: those of them the scored pod exchanges traffic with (only these
  change a NetMARKS score);
- *changed answers*: calls whose best-scoring nodes differ from what the same extender
  would have answered with every earlier pod of the round in its cache;
- *left-overs*: pods of the previous redeployment still in the cache;
- the scheduling order (inversions against creation order, and the queue jitter that
  fits it, as bench/fidelity_probe.py measures it for the default profile);

and the distinct layouts and inter-node share of each variant. The extender runs in
this process (not as a separate one, as the kwok backend runs it) so its cache can be
read at each call; bench/fidelity.py measures the pair as the backend runs it.

    python3 bench/fidelity_extender_probe.py                 # 2 x 60 redeployments, ~4 min
    python3 bench/fidelity_extender_probe.py --deployments 100 --variants off on on-await
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from rich.progress import Progress

from harness.backends.emulated.procs import free_port
from harness.backends.k8s import ExtraScheduler, KwokCluster, binaries, extender_stanza
from harness.backends.k8s.placements import place_once
from results import provenance
from schedulers import inter_node_traffic, uniform_nodes
from schedulers.extender import (
    KubernetesBinder,
    KubernetesPodWatcher,
    Placements,
    StaticTraffic,
    make_app,
)
from schedulers.extender.app import INFLIGHT_KEY
from schedulers.plugins.netmarks import extender_scores, raw_scores
from schedulers.traffic import TrafficMatrix, traffic_from_economy
from settlers.economy import load_economy

# The bench scripts are not a package: share fidelity.py's and fidelity_probe.py's
# functions (not copies of them) from beside this file, however it is started.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fidelity import compare, distinct, load_traffic
from fidelity_probe import fit_jitter, inversions

__all__ = ["Call", "replay", "staleness"]

RESULTS = Path(__file__).parent / "results" / "fidelity-extender-probe.json"
NAMESPACE = "xprobe"
NODES = 5


@dataclass
class Call:
    """One /prioritize call: the round, the pod, its workload, the candidate nodes and
    what the extender's cache held for this namespace (pod key -> (node, workload))."""

    round: int
    pod: str
    workload: str
    nodes: list[str]
    seen: dict[str, tuple[str, str]]
    scores: list[int] = field(default_factory=list)


def _best(scores: Sequence[int]) -> set[int]:
    top = max(scores, default=0)
    return {i for i, s in enumerate(scores) if s == top}


def _answer(call: Call, view: Mapping[str, tuple[str, str]],
            traffic: TrafficMatrix) -> list[int]:
    """The extender's scores for ``call``'s pod and nodes with ``view`` in its cache."""
    index = {n: i for i, n in enumerate(call.nodes)}
    counts: list[dict[str, int]] = [{} for _ in call.nodes]
    for node, w in view.values():
        if node in index:
            counts[index[node]][w] = counts[index[node]].get(w, 0) + 1
    totals = dict(Counter(w for _, w in view.values()))
    return extender_scores(raw_scores(call.workload, counts, totals, traffic))


def staleness(calls: Sequence[Call], bound: Mapping[str, tuple[str, str]],
              traffic: TrafficMatrix) -> dict[str, Any]:
    """Per-call gaps between the extender's cache and kube-scheduler's (see the module
    docstring). ``bound``: every pod key -> (node, workload) it was finally bound to."""
    per_call: list[dict[str, Any]] = []
    earlier: dict[int, list[str]] = {}
    for c in calls:
        before = earlier.setdefault(c.round, [])
        missing = [k for k in before if k not in c.seen and k in bound and k != c.pod]
        leftovers = [k for k in c.seen if k not in before and k != c.pod]
        neighbours = traffic.neighbours(c.workload)
        missing_nb = [k for k in missing if bound[k][1] in neighbours]
        # What the extender would have answered with every earlier pod of the round.
        full = {k: bound[k] for k in before if k in bound}
        changed = bool(missing_nb or leftovers) and (
            _best(_answer(c, c.seen, traffic)) != _best(_answer(c, full, traffic)))
        per_call.append({"missing": len(missing), "missing_neighbours": len(missing_nb),
                         "leftovers": len(leftovers), "changed": changed})
        before.append(c.pod)
    n = len(per_call)
    if not n:
        return {"calls": 0}
    return {
        "calls": n,
        "mean_missing_peers": statistics.fmean(p["missing"] for p in per_call),
        "share_calls_missing_a_peer": sum(p["missing"] > 0 for p in per_call) / n,
        "share_calls_missing_a_neighbour": sum(p["missing_neighbours"] > 0
                                               for p in per_call) / n,
        "share_calls_answer_changed": sum(p["changed"] for p in per_call) / n,
        "share_calls_with_leftovers": sum(p["leftovers"] > 0 for p in per_call) / n,
        "missing_peers_histogram": dict(sorted(Counter(p["missing"]
                                                       for p in per_call).items())),
    }


def replay(orders: Sequence[Sequence[str]], traffic: TrafficMatrix, seed: int,
           jitter: float | None = None) -> list[dict[str, str]]:
    """The netmarks model placing each round's pods in that round's measured scheduling
    order (``orders``: workloads in cycle order; queue jitter 0), once per round; with
    ``jitter``, in a jittered creation order instead (the model as it is)."""
    from schedulers import get_policy, pods_for_economy

    pods = pods_for_economy(load_economy())
    nodes = uniform_nodes(NODES)
    if jitter is not None:
        policy = get_policy("netmarks", traffic=traffic, seed=seed, queue_jitter=jitter)
        return [dict(policy.schedule(pods, nodes).assignments) for _ in orders]
    policy = get_policy("netmarks", traffic=traffic, seed=seed, queue_jitter=0.0)
    out = []
    for order in orders:
        rank = {w: i for i, w in enumerate(order)}
        ordered = sorted(pods, key=lambda p: rank.get(p.workload, len(rank)))
        out.append(dict(policy.schedule(ordered, nodes).assignments))
    return out


def replay_check(orders: Sequence[Sequence[str]], layouts: Sequence[dict[str, str]],
                 traffic: TrafficMatrix, fitted_jitter: float | None) -> dict[str, Any]:
    """Real layouts against the model replaying the real scheduling orders, the model
    with its default queue jitter, and with the jitter fitted to these orders."""
    from schedulers.framework import DEFAULT_QUEUE_JITTER

    reference = traffic_from_economy(load_economy())

    def share(x: Mapping[str, str]) -> float:
        a, b = inter_node_traffic(x, reference)
        return a / b if b else 0.0

    nodes = uniform_nodes(NODES)
    models = {"real_orders": replay(orders, traffic, 1),
              f"jitter_{DEFAULT_QUEUE_JITTER}": replay(orders, traffic, 1, DEFAULT_QUEUE_JITTER)}
    if fitted_jitter is not None:
        models[f"jitter_{fitted_jitter}"] = replay(orders, traffic, 1, fitted_jitter)
    return {"real": {"distinct_layouts": distinct(layouts, nodes),
                     "mean_inter_node_share": statistics.fmean(share(x) for x in layouts)},
            **{name: {"distinct_layouts": distinct(m, nodes),
                      "mean_inter_node_share": statistics.fmean(share(x) for x in m),
                      "vs_real": compare(layouts, m, share)} for name, m in models.items()}}


class _Recorder:
    """The calls one extender answered, and every binding its cache ever held."""

    def __init__(self, placements: Placements) -> None:
        self.placements = placements
        self.round = -1
        self.calls: list[Call] = []
        self.lock = threading.Lock()

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        if request.path != "/prioritize":
            return await handler(request)
        body = json.loads(await request.read())  # aiohttp keeps it for the handler
        meta = body["Pod"].get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        response = await handler(request)
        # The handler does not yield after its (optional) wait for earlier bindings, so
        # the cache now is the cache it scored with (give or take a watch event).
        seen = {k: v for k, v in self.placements.snapshot().items()
                if k.startswith(NAMESPACE + "/")}
        if key.startswith(NAMESPACE + "/") and isinstance(response, web.Response):
            answer = json.loads(response.body or b"[]")  # type: ignore[arg-type]
            with self.lock:
                self.calls.append(Call(self.round, key, str(
                    (meta.get("labels") or {}).get("app", "")), [a["Host"] for a in answer],
                    seen, [int(a["Score"]) for a in answer]))
        return response


class _History(Placements):
    """Placements that also remember the last node of every pod they ever held."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, tuple[str, str]] = {}

    def _set(self, key: str, node: str, workload: str) -> None:
        super()._set(key, node, workload)
        self.history[key] = (node, workload)


class _Served:
    """The extender app on a loopback port, its event loop in a thread."""

    def __init__(self, app: web.Application) -> None:
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app, access_log=None)
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.runner.setup())
            self.loop.run_until_complete(
                web.TCPSite(self.runner, "127.0.0.1", self.port).start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="extender", daemon=True)
        self.thread.start()
        if not ready.wait(30):
            raise RuntimeError("the in-process extender did not start")

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


VARIANTS = ("off", "on", "off-await", "on-await")
AWAIT_S = 0.5


def run_variant(cluster: KwokCluster, variant: str, deployments: int,
                traffic: TrafficMatrix, progress: Progress) -> dict[str, Any]:
    """``deployments`` redeployments with the extender binding ("on...") or not
    ("off..."); "...-await": with ``--await-binds`` AWAIT_S."""
    bind = variant.startswith("on")
    economy = load_economy()
    kubeconfig = str(cluster.kubeconfig)
    placements = _History()
    watcher = KubernetesPodWatcher(placements, kubeconfig)
    watcher.start()
    watcher.synced.wait(10)
    recorder = _Recorder(placements)
    app = make_app(StaticTraffic(traffic), placements,
                   KubernetesBinder(kubeconfig) if bind else None,
                   await_binds_s=AWAIT_S if variant.endswith("await") else 0.0)
    app.middlewares.append(recorder.middleware)
    served = _Served(app)
    name = f"xprobe-{variant}"
    stanza = extender_stanza(f"http://127.0.0.1:{served.port}/",
                             bind_verb="bind" if bind else None)
    scheduler = ExtraScheduler.start(cluster, name, extenders=[stanza])
    layouts: list[dict[str, str]] = []
    task = progress.add_task(f"extender bind {variant}", total=deployments)
    try:
        for i in range(deployments):
            recorder.round = i
            layouts.append(place_once(cluster, economy, name, NAMESPACE).assignments)
            progress.advance(task)
    finally:
        scheduler.stop()
        served.stop()
        watcher.stop()
    reference = traffic_from_economy(economy)
    nodes = uniform_nodes(NODES)
    rounds: dict[int, list[str]] = {}
    for c in recorder.calls:
        rounds.setdefault(c.round, []).append(c.workload)
    items = [i.name for i in economy]
    complete = [r for r in rounds.values() if sorted(r) == sorted(items)]
    fit = fit_jitter(complete, items) if complete else None
    whole = [i for i, r in rounds.items() if sorted(r) == sorted(items)]
    return {
        "variant": variant,
        "deployments": len(layouts),
        "staleness": staleness(recorder.calls, placements.history, traffic),
        "await_binds": {"waits": app[INFLIGHT_KEY].waits,
                        "timeouts": app[INFLIGHT_KEY].timeouts},
        "queue_order": {
            "complete_rounds": len(complete),
            "mean_inversions": statistics.fmean(
                inversions([items.index(w) for w in r]) for r in complete) if complete else None,
            "fit": fit,
        },
        # The model given each real round's own scheduling order: what is left once the
        # queue order is the real one.
        "replay": replay_check([rounds[i] for i in whole], [layouts[i] for i in whole],
                               traffic, fit["best"] if fit else None) if whole else None,
        "orders": [rounds.get(i, []) for i in range(len(layouts))],
        "layouts": layouts,
        "distinct_layouts": distinct(layouts, nodes),
        "mean_inter_node_share": statistics.fmean(
            a / b for a, b in (inter_node_traffic(x, reference) for x in layouts)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--deployments", type=int, default=60,
                    help="redeployments per variant (default 60)")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=["off", "on"],
                    help="off: the extender learns bindings from its pod watch only; on: "
                         "it also serves the bind verb; -await: it also waits (up to "
                         f"{AWAIT_S} s) for the pods it scored before to be bound "
                         "(--await-binds) (default: off on)")
    ap.add_argument("--traffic", type=Path, metavar="FILE",
                    help="traffic matrix the extender scores with (default: the economy's "
                         "reference order mix)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.deployments < 1:
        ap.error(f"--deployments must be >= 1, got {args.deployments}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    traffic = load_traffic(args.traffic)
    bins = binaries()
    load_start = os.getloadavg()
    t0 = time.monotonic()
    with KwokCluster.start(nodes=NODES, cpu="4", memory="8Gi", bins=bins) as cluster:
        cluster.core_v1().create_namespace({"metadata": {"name": NAMESPACE}})
        with Progress() as progress:
            variants = [run_variant(cluster, v, args.deployments, traffic, progress)
                        for v in args.variants]
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**provenance.machine(), "load_average_start": list(load_start),
                    "load_average_end": list(os.getloadavg())},
        "versions": bins.versions(),
        "seconds": time.monotonic() - t0,
        "traffic": traffic.source,
        "variants": variants,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    # The per-round orders and layouts stay in the file; the console gets the findings.
    for v in variants:
        print(v["variant"], json.dumps({"distinct_layouts": v["distinct_layouts"],
                                        **v["staleness"], **v["await_binds"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
