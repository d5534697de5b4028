"""Scheduler benchmarks: extender latency over HTTP, firmament solve time, kube_default rate.

    python3 bench/schedulers_bench.py            # everything, ~3-5 minutes here
    python3 bench/schedulers_bench.py --quick    # fewer requests / repeats

1. ``schedulers netmarks-extender`` as a real process (fed a v1.PodList of N
   running pods and the settlers2 traffic matrix); a client POSTs ExtenderArgs
   one at a time over loopback HTTP and records latency. Both request forms:
   ``NodeNames`` (nodeCacheCapable: true) and ``Nodes`` (a full v1.NodeList).
   Target: p99 <= 10 ms at 100 nodes x 5000 pods.
2. firmament: one ``schedule()`` of P pending pods (settlers2 workloads, equal
   replicas, with its traffic) on N empty 16-CPU/64-GiB/110-pod nodes, 6 rounds.
   Target: <= 2 s for 10 000 pods on 1000 nodes.
3. kube_default: pods per second on 5 nodes, as ``harness schedule`` uses it
   (19-pod deployments, fresh cluster each) and as one 500-pod batch.
   Target: >= 1000 pods/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from schedulers import (
    Pod,
    TrafficMatrix,
    example_traffic_path,
    get_policy,
    pods_for_economy,
    uniform_nodes,
)
from settlers.economy import load_economy

RESULTS = Path(__file__).parent / "results" / "schedulers.json"
ITEMS = load_economy().names


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node_json(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                   "kubernetes.io/os": "linux",
                                                   "type": "kwok"}},
            "spec": {},
            "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


POD = {"metadata": {"name": "bread-7d9f8c6b5-k2x8p", "namespace": "settlers",
                    "labels": {"app": "bread", "pod-template-hash": "7d9f8c6b5"}},
       "spec": {"containers": [{"name": "producer", "image": "settlers-testbed:0.1.0",
                                "resources": {"requests": {"cpu": "100m",
                                                           "memory": "64Mi"}}}],
                "schedulerName": "default-scheduler"},
       "status": {"phase": "Pending"}}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc): load-independent cost."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _server_buckets(session: aiohttp.ClientSession, base: str) -> dict[float, float]:
    """The extender's own /prioritize latency histogram: upper bound (s) -> count."""
    async with session.get(base + "/metrics") as r:
        text = await r.text()
    out = {}
    for line in text.splitlines():
        if line.startswith("netmarks_extender_prioritize_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def _bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """Upper bound (ms) of the bucket holding quantile q of the requests between two reads."""
    total = after[float("inf")] - before.get(float("inf"), 0.0)
    for le in sorted(after):
        if after[le] - before.get(le, 0.0) >= q * total:
            return le * 1000
    return float("inf")


async def _extender_case(nodes: int, pods: int, requests: int, tmp: Path) -> dict[str, Any]:
    rng = random.Random(nodes * 7919 + pods)
    names = [f"node-{i}" for i in range(1, nodes + 1)]
    items = [{"metadata": {"name": f"{ITEMS[i % len(ITEMS)]}-{i}", "namespace": "settlers",
                           "labels": {"app": ITEMS[i % len(ITEMS)]}},
              "spec": {"nodeName": rng.choice(names)}, "status": {"phase": "Running"}}
             for i in range(pods)]
    pod_file = tmp / f"pods-{nodes}-{pods}.json"
    pod_file.write_text(json.dumps({"kind": "PodList", "items": items}))
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "schedulers.cli", "netmarks-extender", "--traffic",
         str(example_traffic_path()), "--pods", str(pod_file), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out: dict[str, Any] = {"nodes": nodes, "running_pods": pods}
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 120  # start-up is slow on a loaded machine
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the extender exited with {proc.returncode}")
                try:
                    async with session.get(base + "/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)
            node_list = {"kind": "NodeList", "apiVersion": "v1",
                         "items": [_node_json(n) for n in names]}
            for form, args in (("NodeNames", {"Pod": POD, "Nodes": None, "NodeNames": names}),
                               ("Nodes", {"Pod": POD, "Nodes": node_list, "NodeNames": None})):
                body = json.dumps(args).encode()
                before = await _server_buckets(session, base)
                cpu0 = _cpu_seconds(proc.pid)
                lat = []
                for i in range(requests + 20):
                    t0 = time.perf_counter()
                    async with session.post(base + "/prioritize", data=body, headers={
                            "Content-Type": "application/json"}) as r:
                        scores = await r.json()
                    if i >= 20:  # warm-up
                        lat.append((time.perf_counter() - t0) * 1000)
                assert len(scores) == nodes and max(s["Score"] for s in scores) == 10
                cpu = _cpu_seconds(proc.pid) - cpu0
                after = await _server_buckets(session, base)
                out[form] = {"requests": len(lat), "body_bytes": len(body),
                             "p50_ms": statistics.median(lat),
                             "p99_ms": _percentile(lat, 0.99), "max_ms": max(lat),
                             # inside the handler, from its histogram (bucket upper bounds)
                             "server_p50_ms_le": _bucket_quantile(before, after, 0.5),
                             "server_p99_ms_le": _bucket_quantile(before, after, 0.99),
                             # the extender process's CPU time per request (HTTP included)
                             "server_cpu_ms_per_request": cpu * 1000 / (requests + 20)}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return out


def _firmament_case(pods: int, nodes: int, repeats: int) -> dict[str, Any]:
    traffic = TrafficMatrix.from_file(example_traffic_path())
    batch = [Pod(f"{ITEMS[i % len(ITEMS)]}-{i}", ITEMS[i % len(ITEMS)], cpu_m=100,
                 memory=64 * 2**20, labels={"app": ITEMS[i % len(ITEMS)]})
             for i in range(pods)]
    cluster = uniform_nodes(nodes, cpu_m=16000, memory=64 * 2**30, max_pods=110)
    times = []
    for _ in range(repeats):
        result = get_policy("firmament", traffic=traffic).schedule(batch, cluster)
        assert not result.unschedulable
        times.append(result.seconds)
    return {"pods": pods, "nodes": nodes, "repeats": repeats,
            "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def _kube_default_case(deployments: int) -> dict[str, Any]:
    pods = pods_for_economy(load_economy())
    nodes = uniform_nodes(5)
    placed = 0
    seconds = 0.0
    for d in range(deployments):
        r = get_policy("kube_default", seed=d).schedule(pods, nodes)
        placed += len(r.assignments)
        seconds += r.seconds
    big = [Pod(f"{ITEMS[i % len(ITEMS)]}-{i}", ITEMS[i % len(ITEMS)], cpu_m=10,
               memory=2**24) for i in range(500)]
    r = get_policy("kube_default", seed=1).schedule(big, uniform_nodes(5))
    return {"deployments_of_19": {"deployments": deployments, "pods": placed,
                                  "pods_per_s": placed / seconds},
            "batch_of_500": {"pods": len(r.assignments),
                             "pods_per_s": len(r.assignments) / r.seconds}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer requests and repeats")
    opts = ap.parse_args()
    requests = 200 if opts.quick else 1000
    repeats = 1 if opts.quick else 5
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_start": os.getloadavg()},
    }
    print("kube_default ...", flush=True)
    results["kube_default"] = _kube_default_case(100 if opts.quick else 300)
    print(json.dumps(results["kube_default"]), flush=True)
    results["firmament"] = []
    for pods, nodes in ((1000, 100), (1000, 1000), (10000, 100), (10000, 1000)):
        print(f"firmament {pods} pods / {nodes} nodes ...", flush=True)
        results["firmament"].append(_firmament_case(pods, nodes, repeats))
        print(json.dumps(results["firmament"][-1]), flush=True)
    results["extender"] = []
    with tempfile.TemporaryDirectory() as tmp:
        for nodes in (5, 100, 1000):
            for pods in (1000, 5000):
                print(f"extender {nodes} nodes / {pods} pods ...", flush=True)
                n_req = requests if nodes < 1000 else requests // 4
                case = asyncio.run(_extender_case(nodes, pods, n_req, Path(tmp)))
                results["extender"].append(case)
                print(json.dumps(case), flush=True)
    results["machine"]["loadavg_end"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
