"""Scheduling throughput at scale: a scheduler_perf-style run on kwok, every real scheduler
side by side.

For each scheduler in turn, on a fresh kwok control plane (real etcd and kube-apiserver,
1000 fake nodes of 4 CPU / 8 GiB / 110 pods in 10 zones), 10 000 bare pods with
scheduler_perf's default requests (100m CPU, 500 MiB) are created *before* the scheduler
starts; then the scheduler is started and the clock runs from its start until a watch
on the namespace has seen every pod bound. So:

- creation is out of the measurement (its rate is recorded separately): on a 2-core
  machine a Python client creating pods while the scheduler runs would compete with it
  for the CPU and could be the bottleneck itself;
- the time includes the scheduler's start-up and its first list of 10 000 pods and 1000
  nodes, and every bind through the API server;
- the scheduler sees a backlog, the case a batch scheduler (firmament, Poseidon) is
  built for; scheduler_perf instead creates pods while the scheduler runs.

Bare pods, not Deployments: the pod is all a scheduler reads (no owner, so the default
PodTopologySpread constraints do not apply, as in scheduler_perf's default pod), and no
ReplicaSet controller runs beside the scheduler during the measurement.

Each scheduler is one *entry*: a policy whose real counterpart (its
``SPEC.kubernetes``, ``schedulers/registry.py``) is started by the harness's own
machinery (``harness.backends.k8s.hostsched.host_schedulers``): the NetMARKS extender
behind a kube-scheduler profile, the firmament binder, and any policy that declares a
counterpart (trade, diktyo when present). kube-scheduler's default profile is the
cluster's own scheduler in the harness; here kwokctl starts none and the bench runs the
same binary with the default profile after the pods exist.

kube-scheduler's client is rate limited (clientConnection qps 50, burst 100 by default):
entries that run a kube-scheduler are measured with those defaults and with qps = burst
= 5000, scheduler_perf's setting (its test clients get QPS 5000 / Burst 5000), which
Poseidon's published 25 s for the default scheduler came from.

    python3 bench/throughput.py                            # 10 000 pods, 1000 nodes
    python3 bench/throughput.py --pods 200 --nodes 20 --out /tmp/t.json   # a smoke run
    python3 bench/throughput.py --scheduler firmament --qps 5000
    python3 bench/throughput.py --markdown bench/results/throughput.json  # tables only
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import psutil  # type: ignore[import-untyped]

from harness.backends.k8s import KwokCluster, KwokError, binaries
from harness.backends.k8s.counterparts import counterpart
from harness.backends.k8s.hostsched import host_schedulers
from harness.backends.k8s.scheduler import ExtraScheduler
from results import provenance
from schedulers.registry import available_policies
from schedulers.spec import KubernetesCounterpart

__all__ = ["Entry", "PodWatch", "entries", "main", "markdown", "measure_entry", "pod_manifest"]

RESULTS = Path(__file__).parent / "results" / "throughput.json"
# The contenders in the order of the table; those without a counterpart (or not
# installed yet) are left out with a note.
POLICIES = ("kube_default", "netmarks", "firmament", "trade", "diktyo")
ZONES = tuple(f"zone-{i}" for i in range(1, 11))
NODE_CPU, NODE_MEMORY, NODE_PODS = "4", "8Gi", 110
NODE: dict[str, Any] = {"cpu": NODE_CPU, "memory": NODE_MEMORY, "pods": NODE_PODS}
# scheduler_perf's default pod (templates/pod-default.yaml): requests = limits.
POD_REQUESTS = {"cpu": "100m", "memory": "500Mi"}
RAISED_QPS = 5000
NAMESPACE = "throughput"
POSEIDON = {"pods": 10000, "nodes": 1000, "poseidon_s": 12.0, "default_s": 25.0,
            "source": "kubernetes-sigs/poseidon docs/benchmark (scheduler_perf, 2019)"}


class Entry(NamedTuple):
    """One measured scheduler: a policy's counterpart, with a kube-scheduler client
    rate limit (``qps`` None: kube-scheduler's defaults; not used by our binders).
    (A NamedTuple, not a dataclass: tests/unit/test_docs_numbers.py loads this script
    without registering it in sys.modules, which dataclasses need.)"""

    policy: str
    qps: int | None = None

    @property
    def label(self) -> str:
        return self.policy if self.qps is None else f"{self.policy} (qps {self.qps})"

    def client_connection(self) -> dict[str, Any] | None:
        return None if self.qps is None else {"qps": self.qps, "burst": self.qps}


def runs_kube_scheduler(found: KubernetesCounterpart) -> bool:
    """Whether the counterpart's pods are placed by a kube-scheduler we start (its client
    rate limit applies); our own binders use the Python client, which has none."""
    return found.kind in ("default", "extender")


def entries(policies: Sequence[str], qps: Sequence[int | None]) -> tuple[list[Entry], list[str]]:
    """The entries to measure and, for policies left out, why. ``POLICY@QPS`` (QPS a
    number or ``default``) measures that policy's kube-scheduler at that setting only."""
    out: list[Entry] = []
    skipped: list[str] = []
    known = set(available_policies())
    for item in policies:
        policy, at, level = item.partition("@")
        found = counterpart(policy) if policy in known else None
        if found is None:
            skipped.append(f"{policy}: " + ("no such policy on this branch" if policy not in known
                                            else "no real-scheduler counterpart"))
            continue
        if found.external:
            skipped.append(f"{policy}: its scheduler is run by the user, not the harness")
            continue
        levels = _qps_levels(level) if at else list(qps)
        if not runs_kube_scheduler(found):
            levels = [None]  # our binders have no client rate limit to set
        out += [Entry(policy, q) for q in levels if Entry(policy, q) not in out]
    return out, skipped


def pod_manifest(index: int, scheduler_name: str,
                 labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A bare pod like scheduler_perf's default one, for ``scheduler_name``."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"pod-{index:05d}",
                     "labels": {**(labels or {}), "app": "throughput"}},
        "spec": {
            "schedulerName": scheduler_name,
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "pause",
                "image": "registry.k8s.io/pause:3.10",  # never pulled: kwok fakes it
                "resources": {"requests": dict(POD_REQUESTS), "limits": dict(POD_REQUESTS)},
            }],
        },
    }


class PodWatch:
    """Watches a namespace's pods (raw JSON, no client models: 20 000+ events must not
    cost the CPU the schedulers need) and records when each is first seen bound."""

    def __init__(self, cluster: KwokCluster, namespace: str) -> None:
        self._core = cluster.core_v1()
        self._namespace = namespace
        self.bound_at: dict[str, float] = {}
        self.nodes: dict[str, str] = {}
        self._target = 0
        self._done = threading.Event()
        self._stop = threading.Event()
        self._resp: Any = None
        self.error = ""
        listing = self._core.list_namespaced_pod(namespace, _preload_content=False)
        doc = json.loads(listing.data)
        self._rv = str(doc["metadata"]["resourceVersion"])
        for pod in doc["items"]:
            self._see(pod)
        self._thread = threading.Thread(target=self._run, name="pod-watch", daemon=True)
        self._thread.start()

    def expect(self, count: int) -> None:
        self._target = count
        if len(self.bound_at) >= count:
            self._done.set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            if self._resp is not None:
                self._resp.close()
        self._thread.join(5)

    def _see(self, pod: dict[str, Any]) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        name = pod["metadata"]["name"]
        if node and name not in self.bound_at:
            self.bound_at[name] = time.monotonic()
            self.nodes[name] = node
            if self._target and len(self.bound_at) >= self._target:
                self._done.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._resp = self._core.list_namespaced_pod(
                    self._namespace, watch=True, resource_version=self._rv,
                    allow_watch_bookmarks=True, timeout_seconds=300, _preload_content=False)
                for line in self._resp:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        # 410 Gone: our resourceVersion is too old; list again.
                        raise KwokError(f"watch error: {obj.get('message')}")
                    self._rv = str((obj.get("metadata") or {}).get("resourceVersion", self._rv))
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self._see(obj)
            except Exception as exc:  # reconnect, relisting what was missed
                if self._stop.is_set():
                    return
                self.error = str(exc)[:200]
                with contextlib.suppress(Exception):
                    listing = self._core.list_namespaced_pod(
                        self._namespace, _preload_content=False)
                    doc = json.loads(listing.data)
                    self._rv = str(doc["metadata"]["resourceVersion"])
                    for pod in doc["items"]:
                        self._see(pod)
                time.sleep(0.1)


def create_pods(cluster: KwokCluster, namespace: str, count: int, scheduler_name: str,
                workers: int, labels: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
    """Create ``count`` pods with ``workers`` concurrent clients; time it. ``labels``:
    extra labels, given to the pods round-robin.

    The bodies are serialised up front and POSTed over the client's own connection pool
    (its TLS client certificate): the Python client's per-call machinery measured
    ~3.8 ms of CPU per pod here, raw POSTs ~0.5 ms, so creation is the API server's pace.
    """
    api = cluster.api_client()
    pool_manager = api.rest_client.pool_manager
    url = f"{api.configuration.host}/api/v1/namespaces/{namespace}/pods"
    bodies = [json.dumps(pod_manifest(i, scheduler_name,
                                      labels[i % len(labels)] if labels else None)).encode()
              for i in range(count)]

    def one(body: bytes) -> None:
        resp = pool_manager.request("POST", url, body=body,
                                    headers={"Content-Type": "application/json"})
        if resp.status != 201:
            raise KwokError(f"creating a pod: HTTP {resp.status}: {resp.data[:300]!r}")

    start = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, bodies))
    seconds = time.monotonic() - start
    return {"pods": count, "seconds": seconds, "pods_per_s": count / seconds,
            "workers": workers, "client": "raw JSON POSTs, one per pod"}


def _is_plugins(found: KubernetesCounterpart) -> bool:
    # A kube-scheduler built with out-of-tree plugins (Diktyo), on branches that have
    # that kind: it needs its CRDs and objects written first.
    return str(found.kind) == "plugins"


def plugin_setup(cluster: KwokCluster, found: KubernetesCounterpart) -> Any:
    """What a "plugins" counterpart reads, written to the cluster as the kwok backend does
    it (harness.backends.k8s.pluginsched, imported by name: not on every branch): the
    shipped economy's AppGroup, the cluster's nodes, the default topology's network."""
    from results.topology import resolve_topology
    from settlers.economy import load_economy

    pluginsched = importlib.import_module("harness.backends.k8s.pluginsched")
    listing = cluster.core_v1().list_node(_preload_content=False)
    nodes = [(n["metadata"]["name"], dict(n["metadata"].get("labels") or {}))
             for n in json.loads(listing.data)["items"]]
    topology = resolve_topology(None, nodes=len(nodes))
    setup = pluginsched.plugin_setup(found, economy=load_economy(), nodes=nodes,
                                     network=topology.network(), traffic=None, options={})
    pluginsched.install_setup(cluster.api_client(), setup)
    return setup


@contextlib.contextmanager
def scheduler_running(cluster: KwokCluster, found: KubernetesCounterpart,
                      entry: Entry, setup: Any = None) -> Iterator[None]:
    """The entry's scheduler on ``cluster`` for the duration of the block (``setup``: a
    "plugins" counterpart's, from plugin_setup)."""
    if found.kind == "default":
        # The harness's default-profile scheduler is the cluster's own; kwokctl started
        # none here, so run that binary with the default profile now.
        with ExtraScheduler.start(cluster, found.scheduler_name,
                                  client_connection=entry.client_connection()):
            yield
        return
    extra: dict[str, Any] = {"setup": setup} if setup is not None else {}
    with host_schedulers(found, found.scheduler_name, kubeconfig=cluster.kubeconfig,
                         context=None, traffic=None,
                         client_connection=entry.client_connection(), **extra):
        yield


def _children_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of this process's live children, by name."""
    out: Counter[str] = Counter()
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            t = child.cpu_times()
            out[_proc_name(child)] += t.user + t.system
    return dict(out)


def _proc_name(proc: psutil.Process) -> str:
    cmd = proc.cmdline()
    if len(cmd) > 2 and cmd[1] == "-c" and "schedulers.cli" in cmd[2]:
        return f"schedulers {cmd[3]}" if len(cmd) > 3 else "schedulers"
    return str(proc.name())


def _cluster_cpu(cluster: KwokCluster) -> dict[str, float]:
    """CPU seconds so far of the control plane's processes, by component."""
    out: dict[str, float] = {}
    for pidfile in sorted((cluster.cluster_dir / "pids").glob("*.pid")):
        with contextlib.suppress(ValueError, OSError, psutil.Error):
            t = psutil.Process(int(pidfile.read_text().strip())).cpu_times()
            out[pidfile.stem] = t.user + t.system
    return out


def _binder_rounds(found: KubernetesCounterpart, since: float) -> list[str]:
    """Our binders' round log lines, with where each round's time went (their logs live
    in host_schedulers' work dir, removed when the block ends: read before). A round is
    logged just after its last bind returns: wait (briefly) for that line."""
    if found.kind != "custom" or not found.host_command:
        return []
    deadline = time.monotonic() + 10.0
    lines: list[str] = []
    while True:
        lines = []
        for log in Path(tempfile.gettempdir()).glob(f"settlers-{found.scheduler_name}-*/*.log"):
            with contextlib.suppress(OSError):
                if log.stat().st_mtime >= since:
                    lines += [ln for ln in log.read_text(errors="replace").splitlines()
                              if re.search(r"round: \d+ pending", ln)]
        if lines or time.monotonic() > deadline:
            return lines[:50]
        time.sleep(0.1)


def _quantile(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def measure_entry(entry: Entry, *, pods: int, nodes: int, timeout_s: float,
                  create_workers: int, workdir: Path | None = None) -> dict[str, Any]:
    """One entry on a fresh cluster: create the pods, start the scheduler, wait for all
    bound (a watch), and return its figures."""
    found = counterpart(entry.policy)
    assert found is not None
    out: dict[str, Any] = {
        "label": entry.label, "policy": entry.policy, "scheduler_name": found.scheduler_name,
        "component": found.component, "kind": found.kind,
        "client_connection": (entry.client_connection() or "kube-scheduler defaults "
                              "(qps 50, burst 100)") if runs_kube_scheduler(found)
        # pluginsched writes the plugins scheduler's config: client defaults, not settable.
        else "kube-scheduler defaults (qps 50, burst 100)" if _is_plugins(found)
        else "Python client (no client-side rate limit)",
        "pods": pods, "nodes": nodes, "error": "",
    }
    bins = binaries()
    t_cluster = time.monotonic()
    with KwokCluster.start(nodes=nodes, cpu=NODE_CPU, memory=NODE_MEMORY,
                           pods=NODE_PODS, zones=ZONES, bins=bins, workdir=workdir,
                           disable=("kube-scheduler",), timeout=300) as cluster:
        out["cluster_start_s"] = time.monotonic() - t_cluster
        core: Any = cluster.core_v1()
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        # Diktyo's pods carry its AppGroup's labels (round-robin over the economy's
        # items), so that its plugins do their work, not skip unlabelled pods.
        setup = plugin_setup(cluster, found) if _is_plugins(found) else None
        labels = list(setup.pod_labels.values()) if setup is not None else []
        watch = PodWatch(cluster, NAMESPACE)
        try:
            out["creation"] = create_pods(cluster, NAMESPACE, pods, found.scheduler_name,
                                          create_workers, labels)
            out["bound_before_start"] = len(watch.bound_at)
            watch.expect(pods)
            cpu0 = _cluster_cpu(cluster)
            out["load_avg_before"] = [round(x, 2) for x in os.getloadavg()]
            wall0 = time.time()
            t0 = time.monotonic()
            cpu_sched: dict[str, float] = {}
            with scheduler_running(cluster, found, entry, setup):
                out["start_to_ready_s"] = time.monotonic() - t0
                finished = watch.wait(max(0.0, timeout_s - (time.monotonic() - t0)))
                cpu_sched = _children_cpu()
                rounds = _binder_rounds(found, wall0) if finished else []
            cpu1 = _cluster_cpu(cluster)
            out["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
        finally:
            watch.stop()
    times = sorted(t - t0 for t in watch.bound_at.values())
    bound = len(times)
    if not finished:
        out["error"] = f"{bound}/{pods} bound after {timeout_s:.0f} s"
    # The middle 80 % of the binds: start-up and the last stragglers left out.
    i10, i90 = int(0.1 * (bound - 1)), int(0.9 * (bound - 1))
    per_node = Counter(watch.nodes.values())
    out.update({
        "bound": bound,
        "first_bind_s": times[0] if times else None,
        "all_bound_s": times[-1] if finished and times else None,
        "pods_per_s": bound / times[-1] if finished and times else None,
        "steady_pods_per_s": (i90 - i10) / (times[i90] - times[i10])
        if bound > 10 and times[i90] > times[i10] else None,
        "bind_time_s": {"p50": _quantile(times, 0.5), "p99": _quantile(times, 0.99)}
        if times else {},
        "nodes_used": len(per_node),
        "max_pods_per_node": max(per_node.values()) if per_node else 0,
        "cpu_s": {"scheduler": {k: round(v, 2) for k, v in cpu_sched.items()},
                  "control_plane": {k: round(cpu1.get(k, 0.0) - v, 2)
                                    for k, v in cpu0.items()}},
        "binder_rounds": rounds,
        "watch_reconnect_error": watch.error,
    })
    return out


def markdown(result: dict[str, Any]) -> str:
    """The BENCHMARKS.md table: each entry's pods/s and time to bind all, and its ratio
    to the default scheduler measured with the same client setting."""
    rows = result["entries"]
    default = {r["client_connection"] if isinstance(r["client_connection"], str)
               else r["client_connection"]["qps"]: r
               for r in rows if r["policy"] == "kube_default" and r["pods_per_s"]}
    fallback = max(default.values(), key=lambda r: r["pods_per_s"], default=None)
    lines = ["| scheduler | kube-scheduler client | time to bind all | pods/s | steady pods/s "
             "| x default (qps 5000) | scheduler CPU | API server CPU | load before / after |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        cc = r["client_connection"]
        client = (f"qps {cc['qps']}, burst {cc['burst']}" if isinstance(cc, dict)
                  else "qps 50, burst 100 (default)" if cc.startswith("kube-scheduler")
                  else "n/a (Python)")
        ratio = (f"{r['pods_per_s'] / fallback['pods_per_s']:.2f}"
                 if fallback and r["pods_per_s"] else "-")
        sched_cpu = sum(r["cpu_s"]["scheduler"].values())
        api_cpu = r["cpu_s"]["control_plane"].get("kube-apiserver", 0.0)
        took = f"{r['all_bound_s']:.1f} s" if r["all_bound_s"] else f"not all ({r['error']})"
        rate = f"{r['pods_per_s']:.0f}" if r["pods_per_s"] else "-"
        steady = f"{r['steady_pods_per_s']:.0f}" if r["steady_pods_per_s"] else "-"
        la, lb = r["load_avg_before"], r["load_avg_after"]
        lines.append(f"| {r['label']} | {client} | {took} | {rate} | {steady} | {ratio} "
                     f"| {sched_cpu:.1f} s | {api_cpu:.1f} s | {la[0]:.1f} / {lb[0]:.1f} |")
    lines += ["", "| scheduler | first bind | scheduler CPU / pod | API server CPU / pod "
              "| etcd CPU / pod | kwok CPU / pod | cores busy |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["all_bound_s"]:
            lines.append(_cpu_row(r))
    rounds = [(r["label"], m) for r in rows for line in r.get("binder_rounds") or []
              if (m := _ROUND.search(line))]
    if rounds:
        lines += ["", "| binder round | pods | round | list | solve | bind "
                  "| binds/s while binding |", "|---|---:|---:|---:|---:|---:|---:|"]
        for label, m in rounds:
            bound, bind_s = int(m["bound"]), float(m["bind"])
            rate = f"{bound / bind_s:.0f}" if bind_s > 0 else "-"
            lines.append(f"| {label} | {bound} | {float(m['total']):.1f} s "
                         f"| {float(m['list']):.1f} s | {float(m['solve']):.2f} s "
                         f"| {bind_s:.1f} s | {rate} |")
    p = result["poseidon"]
    lines += ["", "| published anchor (not this hardware) | default scheduler | Poseidon |",
              "|---|---:|---:|",
              f"| {p['pods']} pods on {p['nodes']} nodes, {p['source']} | "
              f"{p['default_s']:.0f} s | {p['poseidon_s']:.0f} s |"]
    return "\n".join(lines)


def _cpu_row(r: Mapping[str, Any]) -> str:
    """Where an entry's CPU went, per pod bound, and how many cores were busy on average
    (scheduler and control plane; the bench's own watch not counted)."""
    per = 1000.0 / r["bound"]
    cp = r["cpu_s"]["control_plane"]
    sched = sum(r["cpu_s"]["scheduler"].values())
    busy = (sched + sum(cp.values())) / r["all_bound_s"]
    return (f"| {r['label']} | {r['first_bind_s']:.1f} s | {sched * per:.2f} ms "
            f"| {cp.get('kube-apiserver', 0) * per:.2f} ms | {cp.get('etcd', 0) * per:.2f} ms "
            f"| {cp.get('kwok-controller', 0) * per:.2f} ms | {busy:.2f} |")


# A binder's round line (schedulers.firmament_k8s): where the round's time went.
_ROUND = re.compile(r"round: (?P<pending>\d+) pending, (?P<bound>\d+) bound, .* in "
                    r"(?P<total>[\d.]+) s \(list (?P<list>[\d.]+), solve (?P<solve>[\d.]+), "
                    r"bind (?P<bind>[\d.]+)\)")


def _qps_levels(text: str) -> list[int | None]:
    levels: list[int | None] = []
    for part in text.split(","):
        part = part.strip()
        if part == "default":
            levels.append(None)
        elif part.isdigit() and int(part) > 0:
            levels.append(int(part))
        else:
            raise argparse.ArgumentTypeError(
                f"--qps takes 'default' and/or positive integers, comma separated, "
                f"e.g. default,5000; got {part!r}")
    return levels


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=10000, help="pods per scheduler (default 10000)")
    ap.add_argument("--nodes", type=int, default=1000, help="kwok nodes (default 1000)")
    ap.add_argument("--scheduler", action="append", metavar="POLICY[@QPS]", dest="policies",
                    help="a policy whose real counterpart to measure (repeatable; default: "
                         f"{', '.join(POLICIES)}, those present); @QPS ('default' or N) "
                         "measures its kube-scheduler at that client setting only, e.g. "
                         "netmarks@5000")
    ap.add_argument("--qps", type=_qps_levels, default=[None, RAISED_QPS],
                    help="kube-scheduler client settings to measure, comma separated: "
                         "'default' (qps 50, burst 100) and/or N (qps = burst = N); "
                         f"default: default,{RAISED_QPS}. Our Python binders run once")
    ap.add_argument("--timeout", type=float, default=900.0,
                    help="seconds to wait for all pods bound, per scheduler (default 900)")
    ap.add_argument("--create-workers", type=int, default=8,
                    help="concurrent clients creating the pods (default 8)")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"results JSON (default {RESULTS})")
    ap.add_argument("--markdown", type=Path, metavar="JSON",
                    help="print the tables of a results file and exit (no cluster)")
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    for flag, value in (("--pods", args.pods), ("--nodes", args.nodes),
                        ("--create-workers", args.create_workers)):
        if value < 1:
            ap.error(f"{flag} must be >= 1, got {value}")
    if args.pods > args.nodes * NODE_PODS:
        ap.error(f"{args.pods} pods do not fit {args.nodes} nodes of {NODE_PODS} pods")
    # On SIGTERM unwind normally, so every kwok cluster is deleted on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        todo, skipped = entries(args.policies or POLICIES, args.qps)
    except argparse.ArgumentTypeError as exc:
        ap.error(f"--scheduler: {exc}")
    if args.policies and skipped:
        ap.error("; ".join(skipped))
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": provenance.machine(),
        "versions": {**binaries().versions(), **provenance.versions()},
        "settings": {"pods": args.pods, "nodes": args.nodes, "node": NODE, "zones": len(ZONES),
                     "pod_requests": POD_REQUESTS, "pod_kind": "bare pods",
                     "timeout_s": args.timeout,
                     "timing": "from the scheduler's start, all pods already Pending, until "
                               "a watch has seen every pod bound"},
        "skipped": skipped,
        "poseidon": POSEIDON,
        "entries": [],
    }
    for entry in todo:
        print(f"{entry.label}: {args.pods} pods on {args.nodes} nodes ...", flush=True)
        try:
            row = measure_entry(entry, pods=args.pods, nodes=args.nodes,
                                timeout_s=args.timeout, create_workers=args.create_workers)
        except Exception as exc:  # e.g. a scheduler binary not built: say so, go on
            print(f"  failed: {exc}", file=sys.stderr)
            result["skipped"].append(f"{entry.label}: failed: {str(exc)[:300]}")
            continue
        result["entries"].append(row)
        print(f"  {row['bound']} bound, all in {row['all_bound_s']} s, "
              f"{row['pods_per_s']} pods/s (created at {row['creation']['pods_per_s']:.0f}/s)",
              flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    result["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    if result["entries"]:
        print(markdown(result))
    return 0 if result["entries"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
