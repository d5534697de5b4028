#!/usr/bin/env python3
"""The emulated cluster's links and mesh: configured vs measured, and what it costs.

Five measurements, each against real processes on loopback (the mesh is its own
process, like in the cluster):

1. *latency*: per preset, the p50 round trip of a 16 B ping through the mesh with
   the echo server on the same node and on another node; measured one-way added
   latency = (split - co-located) / 2, against the preset's latency;
2. *throughput*: per preset, a bulk transfer across nodes; measured rate =
   bytes / (time - 2 x latency), against the preset's bandwidth;
3. *overhead*: the mesh on an intra-node hop vs calling the server directly (16 B);
4. *relayout*: time of ``EmulatedCluster.relayout`` on the 19-pod default economy;
5. *calibration*: the NetMARKS micro-benchmark on the default preset: a two-pod
   chain (flour <- grain) co-located vs split, HTTP and gRPC, 16 B .. 1 MB:
   reduction = 1 - co-located / split, to compare with the paper's 66 % / 69 %;
6. *topology* (not in the default set; ``--part topology --topology zones``): per pair
   class of a topology (same zone, cross zone, cross region), the latency and the
   throughput of one pair of nodes of that class, measured as in 1 and 2, against
   the class's configured link.

    python3 bench/link.py              # everything, writes bench/results/link.json
    python3 bench/link.py --quick      # fewer samples, a smoke run
    python3 bench/link.py --part calibration --link edge
    python3 bench/link.py --part topology --topology zones
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from harness.backends.emulated import ClusterSpec, EmulatedCluster
from harness.backends.emulated.capacity import fit_scale
from harness.backends.emulated.meshctl import MeshProcess
from harness.backends.emulated.placement import random_placement
from results.links import LINK_PRESETS, LinkProfile, resolve_link
from results.topology import Topology, resolve_topology
from settlers.client import open_client
from settlers.economy import load_economy
from settlers.quantity import parse_cpu
from settlers.wire import PROTOCOLS, WireProtocol

RESULTS = Path(__file__).resolve().parent / "results" / "link.json"
SIZES = [16, 256, 4096, 65536, 1048576]
PARTS = ["latency", "throughput", "overhead", "relayout", "calibration"]
EXTRA_PARTS = ["topology"]   # run only when named
PAPER = {"http": 66.0, "grpc": 69.0}

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
console = Console()

# A raw TCP server in its own process: port A echoes, port B answers an 8-byte
# big-endian length with that many bytes. Nothing else, so only the mesh is measured.
_SERVER = r"""
import asyncio, sys
async def echo(r, w):
    while data := await r.read(65536):
        w.write(data)
async def blob(r, w):
    chunk = b"z" * 1048576
    try:
        while header := await r.readexactly(8):
            n = int.from_bytes(header, "big")
            while n > 0:
                w.write(chunk[:min(n, len(chunk))]); n -= len(chunk)
                await w.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
async def main():
    a = await asyncio.start_server(echo, "127.0.0.1", 0)
    b = await asyncio.start_server(blob, "127.0.0.1", 0)
    print(a.sockets[0].getsockname()[1], b.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
import uvloop; uvloop.run(main())
"""


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _pings_ms(ports: list[int], n: int) -> list[tuple[float, float]]:
    """(p50, p90) round trip of a 16 B ping to each port, in ms. The ports take turns
    ping by ping, so a change in the machine's load hits all of them alike."""
    socks = [_connect(port) for port in ports]
    times: list[list[float]] = [[] for _ in ports]
    for i in range(n + 5):
        for s, into in zip(socks, times, strict=True):
            t = time.perf_counter()
            s.sendall(b"0123456789abcdef")
            got = 0
            while got < 16:
                got += len(s.recv(64))
            if i >= 5:
                into.append(time.perf_counter() - t)
    for s in socks:
        s.close()
    return [(statistics.median(ts) * 1000, statistics.quantiles(ts, n=10)[8] * 1000)
            for ts in times]


def _bulk_s(port: int, nbytes: int) -> float:
    s = _connect(port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 2**20)
    t = time.perf_counter()
    s.sendall(nbytes.to_bytes(8, "big"))
    got = 0
    buf = bytearray(2**20)
    while got < nbytes:
        got += s.recv_into(buf)
    elapsed = time.perf_counter() - t
    s.close()
    return elapsed


async def _mesh_for(profile: LinkProfile, echo: int, blob: int, run_dir: Path) -> MeshProcess:
    return await MeshProcess.start({
        "link": {"latency_ms": profile.latency_ms, "bandwidth_mbps": profile.bandwidth_mbps},
        # One echo server seen as two services: "near" on the client's node, "far" on
        # another one, so both paths are measured side by side without a relayout.
        "pods": {"client-0": {"workload": "client", "port": 1},
                 "near-0": {"workload": "near", "port": echo},
                 "far-0": {"workload": "far", "port": echo},
                 "blob-0": {"workload": "blob", "port": blob}},
        "placement": {"client-0": "node-1", "near-0": "node-1", "far-0": "node-2",
                      "blob-0": "node-3"},
        "egress": [["client-0", "near", 0], ["client-0", "far", 0], ["client-0", "blob", 0]],
        "ingress": [],
    }, run_dir)


async def bench_links(presets: list[str], samples: int, run_dir: Path) -> dict[str, Any]:
    server = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    echo, blob = map(int, server.stdout.readline().split())
    out: dict[str, Any] = {"latency": {}, "throughput": {}, "overhead": {}}
    try:
        for name in presets:
            profile = LINK_PRESETS[name]
            mesh = await _mesh_for(profile, echo, blob, run_dir)
            try:
                via = mesh.egress["client-0"]
                # Overhead: direct vs near. Latency: near vs far. Kept apart, because
                # after a far ping every process has slept for the link delay, and
                # waking up then costs more than the mesh itself does.
                (direct, direct_p90), (near, near_p90) = _pings_ms([echo, via["near"]], samples)
                (co, co_p90), (split, split_p90) = _pings_ms([via["near"], via["far"]], samples)
                added = (split - co) / 2
                err = added - profile.latency_ms
                out["latency"][name] = {
                    "configured_ms": profile.latency_ms, "measured_ms": round(added, 4),
                    "error_ms": round(err, 4),
                    "error_pct": round(100 * err / profile.latency_ms, 1),
                    "ok": abs(err) <= max(0.1, 0.1 * profile.latency_ms),
                    "rtt_co_ms": round(co, 4), "rtt_split_ms": round(split, 4),
                    "rtt_co_p90_ms": round(co_p90, 4), "rtt_split_p90_ms": round(split_p90, 4)}
                out["overhead"][name] = {"direct_ms": round(direct, 4), "mesh_ms": round(near, 4),
                                         "direct_p90_ms": round(direct_p90, 4),
                                         "mesh_p90_ms": round(near_p90, 4),
                                         "overhead_ms": round(near - direct, 4),
                                         "ok": near - direct <= 0.2}
                nbytes = int(profile.bandwidth_mbps * 1e6 / 8 * 0.5)   # ~0.5 s of transfer
                rates = []
                for _ in range(3):
                    t = _bulk_s(via["blob"], nbytes)
                    rates.append(nbytes * 8 / (t - 2 * profile.latency_s) / 1e6)
                rate = statistics.median(rates)
                out["throughput"][name] = {
                    "configured_mbps": profile.bandwidth_mbps, "measured_mbps": round(rate, 1),
                    "bytes": nbytes, "runs_mbps": [round(r, 1) for r in rates],
                    "error_pct": round(100 * (rate / profile.bandwidth_mbps - 1), 1),
                    "ok": abs(rate / profile.bandwidth_mbps - 1) <= 0.1}
            finally:
                await mesh.stop()
            console.print(f"{name}: latency {out['latency'][name]}\n  throughput "
                          f"{out['throughput'][name]}\n  overhead {out['overhead'][name]}")
    finally:
        server.terminate()
        server.wait()
    return out


def _class_pairs(topology: Topology) -> dict[str, tuple[str, str]]:
    """One pair of nodes per pair class that occurs, the first in node order."""
    out: dict[str, tuple[str, str]] = {}
    names = topology.node_names
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            cls = topology.pair_class(a, b)
            if cls is not None:
                out.setdefault(cls, (a, b))
    return {c: out[c] for c in topology.used_classes()}


async def bench_topology(topology: Topology, samples: int, run_dir: Path) -> dict[str, Any]:
    """Per pair class: one pair's latency and throughput through the mesh, against the
    class's configured link (the same method as the presets' latency and throughput)."""
    pairs = _class_pairs(topology)
    server = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    echo, blob = map(int, server.stdout.readline().split())
    out: dict[str, Any] = {"topology": topology.name, "describe": topology.describe(),
                           "classes": {}}
    try:
        for cls, (a, b) in pairs.items():
            profile = topology.links[cls].profile()   # type: ignore[index]
            # The client on a, one echo server "near" on a and "far" on b, a blob on b.
            mesh = await MeshProcess.start({
                "link": {"latency_ms": profile.latency_ms, "bandwidth_mbps": None},
                "topology": topology.model_dump(mode="json"),
                "pods": {"client-0": {"workload": "client", "port": 1},
                         "near-0": {"workload": "near", "port": echo},
                         "far-0": {"workload": "far", "port": echo},
                         "blob-0": {"workload": "blob", "port": blob}},
                "placement": {"client-0": a, "near-0": a, "far-0": b, "blob-0": b},
                "egress": [["client-0", "near", 0], ["client-0", "far", 0],
                           ["client-0", "blob", 0]],
                "ingress": [],
            }, run_dir)
            try:
                via = mesh.egress["client-0"]
                (co, _), (split, split_p90) = _pings_ms([via["near"], via["far"]], samples)
                added = (split - co) / 2
                err = added - profile.latency_ms
                row: dict[str, Any] = {
                    "pair": [a, b], "configured_ms": profile.latency_ms,
                    "measured_ms": round(added, 4), "error_ms": round(err, 4),
                    "latency_ok": abs(err) <= max(0.1, 0.1 * profile.latency_ms),
                    "rtt_co_ms": round(co, 4), "rtt_split_ms": round(split, 4),
                    "rtt_split_p90_ms": round(split_p90, 4),
                    "configured_mbps": (None if math.isinf(profile.bandwidth_mbps)
                                        else profile.bandwidth_mbps)}
                if not math.isinf(profile.bandwidth_mbps):
                    nbytes = int(profile.bandwidth_mbps * 1e6 / 8 * 0.5)   # ~0.5 s
                    rates = []
                    for _ in range(3):
                        t = _bulk_s(via["blob"], nbytes)
                        rates.append(nbytes * 8 / (t - 2 * profile.latency_s) / 1e6)
                    rate = statistics.median(rates)
                    row.update(measured_mbps=round(rate, 1), runs_mbps=[round(r, 1) for r in rates],
                               bandwidth_error_pct=round(100 * (rate / profile.bandwidth_mbps - 1),
                                                         1),
                               bandwidth_ok=abs(rate / profile.bandwidth_mbps - 1) <= 0.1)
                out["classes"][cls] = row
            finally:
                await mesh.stop()
            console.print(f"{cls} ({a} - {b}): {out['classes'][cls]}")
    finally:
        server.terminate()
        server.wait()
    return out


def _topology_md(top: dict[str, Any], when: str) -> list[str]:
    lines = ["", f"Topology `{top['topology']}` ({top['describe']}), one pair of nodes per "
             f"pair class{when}:", "",
             "| pair class | pair | latency configured | measured p50 (one way) | error | "
             "bandwidth configured | measured (median of 3) | error | target met |",
             "|---|---|---|---|---|---|---|---|---|"]
    for cls, r in top["classes"].items():
        bw = "unlimited" if r["configured_mbps"] is None else f"{r['configured_mbps']:g} Mbit/s"
        runs = ", ".join(f"{x:g}" for x in r.get("runs_mbps", []))
        meas = "-" if "measured_mbps" not in r else f"{r['measured_mbps']:.1f} Mbit/s (runs {runs})"
        bw_err = "-" if "bandwidth_error_pct" not in r else f"{r['bandwidth_error_pct']:+.1f} %"
        ok = "yes" if r["latency_ok"] and r.get("bandwidth_ok", True) else "no"
        lines.append(f"| {cls} | {' - '.join(r['pair'])} | {r['configured_ms']:g} ms | "
                     f"{r['measured_ms']:.3f} ms | {r['error_ms']:+.3f} ms | {bw} | {meas} | "
                     f"{bw_err} | {ok} |")
    return lines


async def bench_relayout(rounds: int) -> dict[str, Any]:
    t = time.perf_counter()
    spec = ClusterSpec(nodes=5, protocol="http", prometheus=False)
    async with await EmulatedCluster.start(spec) as cluster:
        startup = time.perf_counter() - t
        names = [p.name for p in cluster.pods]
        times = []
        for i in range(rounds):
            layout = random_placement(names, cluster.node_names, seed=i)
            t = time.perf_counter()
            await cluster.relayout(layout)
            times.append(time.perf_counter() - t)
        async with open_client(cluster.entry("sword"), "http") as client:
            result = await client.produce("sword", 1, 16)
        hops = len(result.trace)
        grain = next(p for p in cluster.pods if p.item == "grain")
        via_mesh, direct = await _order_p50s_ms(cluster.entry("grain"), f"127.0.0.1:{grain.port}")
    return {"pods": len(names), "startup_s": round(startup, 2),
            "settlers_hop_16B": {"direct_ms": round(direct, 4), "mesh_ms": round(via_mesh, 4),
                                 "overhead_ms": round(via_mesh - direct, 4),
                                 "ok": via_mesh - direct <= 0.2},
            "relayout_p50_ms": round(statistics.median(times) * 1000, 3),
            "relayout_max_ms": round(max(times) * 1000, 3), "rounds": rounds,
            "ok": max(times) <= 1.0, "sword_hops_after_relayout": hops}


async def _order_p50s_ms(*targets: str, n: int = 300) -> list[float]:
    """p50 of 16 B orders to each target, interleaved order by order."""
    samples: list[list[float]] = [[] for _ in targets]
    clients = [open_client(t, "http") for t in targets]
    try:
        for i in range(n + 10):
            for client, into in zip(clients, samples, strict=True):
                latency = (await client.produce("grain", 1, 16)).latency_s * 1000
                if i >= 10:
                    into.append(latency)
    finally:
        for client in clients:
            await client.close()
    return [statistics.median(s) for s in samples]


async def _chain_samples(cluster: EmulatedCluster, protocol: WireProtocol, size: int,
                         n: int) -> tuple[list[float], list[float]]:
    """Order latencies (ms) co-located and split. The layouts alternate order by order
    (a relayout costs milliseconds), so the machine's load drifts over both alike."""
    samples: dict[str, list[float]] = {"node-1": [], "node-2": []}
    async with open_client(cluster.entry("flour"), protocol) as client:
        for i in range(n + 2):
            for node, into in samples.items():
                await cluster.relayout({"grain-0": node})
                latency = (await client.produce("flour", 1, size)).latency_s * 1000
                if i >= 2:   # the first two rounds warm the connections up
                    into.append(latency)
    return samples["node-1"], samples["node-2"]


@contextlib.contextmanager
def _spinners(n: int) -> Iterator[None]:
    """`n` processes spinning on the CPU (each wants a whole core) while the block runs."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        if procs:
            time.sleep(20)   # let the 1-minute load average start to show them
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _series(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every run's means and load, and per protocol the median and range over runs."""
    out: dict[str, Any] = {"runs": [
        {"run": r["run"], **{p: {"mean_reduction_pct": r[p]["mean_reduction_pct"],
                                 "mean_reduction_p10_pct": r[p]["mean_reduction_p10_pct"]}
                             for p in PROTOCOLS}} for r in runs]}
    for p in PROTOCOLS:
        means = [r[p]["mean_reduction_pct"] for r in runs]
        out[p] = {"median_pct": round(statistics.median(means), 1), "min_pct": min(means),
                  "max_pct": max(means), "paper_pct": PAPER[p],
                  "runs_within_10_points": sum(abs(m - PAPER[p]) <= 10 for m in means)}
    out["link"] = runs[-1]["link"]
    if "capacity" in runs[-1]:
        out["capacity"] = runs[-1]["capacity"]
    return out


def _p10(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=10)[0]


async def bench_calibration(profile: LinkProfile, n: int, node_cpu_m: int | None = None,
                            cpu_scale: float | None = None) -> dict[str, Any]:
    """With `node_cpu_m`, both nodes are capped (cgroups) as in a run with --node-cpu;
    `cpu_scale` None gives each node the machine CPU a node gets in a 5-node run."""
    chain = load_economy().subset(["flour"])
    out: dict[str, Any] = {"link": {"latency_ms": profile.latency_ms,
                                    "bandwidth_mbps": profile.bandwidth_mbps}}
    if node_cpu_m is not None:
        scale = cpu_scale if cpu_scale is not None else fit_scale({
            f"node-{i}": node_cpu_m for i in range(1, 6)})
        out["capacity"] = {"node_cpu_m": node_cpu_m, "cpu_scale": round(scale, 4),
                           "machine_m_per_node": round(node_cpu_m * scale)}
        cpu_scale = scale
    for protocol in PROTOCOLS:
        spec = ClusterSpec(nodes=2, link=profile, economy=chain, protocol=protocol,
                           prometheus=False, node_cpu_m=node_cpu_m, cpu_scale=cpu_scale)
        rows = []
        async with await EmulatedCluster.start(spec, {"grain-0": "node-1",
                                                      "flour-0": "node-1"}) as cluster:
            if node_cpu_m is not None:
                status = cluster.capacity
                out["capacity"]["enforced"] = bool(status and status.enforced)
                out["capacity"]["status"] = "" if status is None else status.line()
            for size in SIZES:
                co_s, split_s = await _chain_samples(cluster, protocol, size, n)
                co, split = statistics.median(co_s), statistics.median(split_s)
                co10, split10 = _p10(co_s), _p10(split_s)
                rows.append({"size": size, "co_ms": round(co, 3), "split_ms": round(split, 3),
                             "reduction_pct": round(100 * (1 - co / split), 1),
                             "co_p10_ms": round(co10, 3), "split_p10_ms": round(split10, 3),
                             "reduction_p10_pct": round(100 * (1 - co10 / split10), 1)})
                console.print(f"{protocol} {size:>8} B: co-located {co:7.2f} ms, split "
                              f"{split:7.2f} ms, reduction {rows[-1]['reduction_pct']:5.1f} % "
                              f"(p10: {co10:.2f} / {split10:.2f} ms, "
                              f"{rows[-1]['reduction_p10_pct']:.1f} %)")
        mean = statistics.mean(r["reduction_pct"] for r in rows)
        mean10 = statistics.mean(r["reduction_p10_pct"] for r in rows)
        out[protocol] = {"sizes": rows, "mean_reduction_pct": round(mean, 1),
                         "mean_reduction_p10_pct": round(mean10, 1),
                         "paper_pct": PAPER[protocol],
                         "ok": abs(mean - PAPER[protocol]) <= 10,
                         "ok_p10": abs(mean10 - PAPER[protocol]) <= 10}
    return out


def _machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "loadavg_1m": round(os.getloadavg()[0], 2)}


def _print_summary(results: dict[str, Any]) -> None:
    if "latency" in results:
        table = Table(title="links: configured vs measured (p50)")
        for col in ("preset", "latency cfg ms", "latency meas ms", "err", "bw cfg Mbit/s",
                    "bw meas Mbit/s", "err", "intra-node overhead ms"):
            table.add_column(col)
        for name, lat in results["latency"].items():
            thr = results["throughput"][name]
            ovh = results["overhead"][name]
            table.add_row(name, f"{lat['configured_ms']:g}", f"{lat['measured_ms']:.3f}",
                          f"{lat['error_pct']:+.0f} %", f"{thr['configured_mbps']:g}",
                          f"{thr['measured_mbps']:.1f}", f"{thr['error_pct']:+.1f} %",
                          f"{ovh['overhead_ms']:.3f}")
        console.print(table)
    if "relayout" in results:
        console.print(f"relayout: {results['relayout']}")


def _calibration_md(cal: dict[str, Any], title: str, when: str) -> list[str]:
    link = cal["link"]
    lines = ["", f"{title} (two-pod chain flour <- grain, link {link['latency_ms']:g} ms / "
             f"{link['bandwidth_mbps']:g} Mbit/s; p50 of 60 orders per cell, layouts "
             f"alternating order by order){when}:", "",
             "| size | HTTP co-located | HTTP split | HTTP reduction | gRPC co-located | "
             "gRPC split | gRPC reduction |", "|---|---|---|---|---|---|---|"]
    for h, g in zip(cal["http"]["sizes"], cal["grpc"]["sizes"], strict=True):
        lines.append(f"| {h['size']} B | {h['co_ms']:.2f} ms | {h['split_ms']:.2f} ms | "
                     f"{h['reduction_pct']:.0f} % | {g['co_ms']:.2f} ms | "
                     f"{g['split_ms']:.2f} ms | {g['reduction_pct']:.0f} % |")
    lines.append(f"| mean | | | **{cal['http']['mean_reduction_pct']:.0f} %** (paper 66 %) "
                 f"| | | **{cal['grpc']['mean_reduction_pct']:.0f} %** (paper 69 %) |")
    lines.append(f"| mean of the fastest decile (p10) | | | "
                 f"{cal['http']['mean_reduction_p10_pct']:.0f} % | | | "
                 f"{cal['grpc']['mean_reduction_p10_pct']:.0f} % |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The BENCHMARKS.md section for these results."""
    m = results["machine"]
    lines = [f"Machine: {m['cpus']} cores, Python {m['python']}; the load average of each "
             "part is given beside it (a busy machine stretches latency). Raw: "
             "`bench/results/link.json`; rerun: `python3 bench/link.py [--part NAME]`.", ""]

    def when(run: dict[str, Any] | None) -> str:
        if not run:
            return ""
        after = run.get("loadavg_1m_after")
        load = run["loadavg_1m_before"] if after is None else \
            f"{run['loadavg_1m_before']} -> {after}"
        return f" (run {run['date']}, load average {load})"

    if "latency" in results:
        lines += ["| preset | latency configured | measured p50 (one way) | error | bandwidth "
                  "configured | measured (median of 3) | error | target met |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, lat in results["latency"].items():
            thr = results["throughput"][name]
            ok = "yes" if lat["ok"] and thr["ok"] else "no"
            lines.append(
                f"| {name} | {lat['configured_ms']:g} ms | {lat['measured_ms']:.3f} ms | "
                f"{lat['error_ms']:+.3f} ms ({lat['error_pct']:+.0f} %) | "
                f"{thr['configured_mbps']:g} Mbit/s | {thr['measured_mbps']:.1f} Mbit/s "
                f"(runs {', '.join(f'{r:g}' for r in thr['runs_mbps'])}) | "
                f"{thr['error_pct']:+.1f} % | {ok} |")
        lines += ["", f"Targets: latency within 10 % or 0.1 ms, throughput within 10 %"
                  f"{when(results.get('links_run'))}. "
                  "Measured one-way latency = (split - co-located round trip) / 2 of a 16 B "
                  "ping; throughput = bytes / (time - 2 x latency) of a 0.5 s bulk transfer.", ""]
        lines += ["| intra-node hop, 16 B round trip | direct p50 (p90) | through the mesh "
                  "p50 (p90) | overhead p50 |", "|---|---|---|---|"]
        for name, ovh in results["overhead"].items():
            lines.append(f"| echo server, mesh run for {name} | {ovh['direct_ms']:.3f} "
                         f"({ovh['direct_p90_ms']:.3f}) ms | {ovh['mesh_ms']:.3f} "
                         f"({ovh['mesh_p90_ms']:.3f}) ms | {ovh['overhead_ms']:+.3f} ms |")
    rel = results.get("relayout")
    if rel:
        hop = rel["settlers_hop_16B"]
        lines.append(f"| settlers grain order (HTTP), 19-pod cluster | {hop['direct_ms']:.3f} ms "
                     f"| {hop['mesh_ms']:.3f} ms | {hop['overhead_ms']:+.3f} ms |")
        lines += ["", "Target: overhead at most 0.2 ms p50.", "",
                  f"Relayout of the {rel['pods']}-pod default economy: p50 "
                  f"{rel['relayout_p50_ms']:.1f} ms, max {rel['relayout_max_ms']:.1f} ms over "
                  f"{rel['rounds']} random layouts (target at most 1 s); the cluster started "
                  f"in {rel['startup_s']:.1f} s{when(rel.get('run'))}."]
    for key, title in (("calibration_quieter_run", "Calibration, the run the preset was "
                        "chosen from"), ("calibration", "Calibration, latest run")):
        cal = results.get(key)
        if cal:
            lines += _calibration_md(cal, title, when(cal.get("run")))
    if results.get("calibration_runs"):
        lines += _series_md(results["calibration_runs"])
    if results.get("topology"):
        lines += _topology_md(results["topology"], when(results["topology"].get("run")))
    return "\n".join(lines) + "\n"


def _series_md(series: dict[str, Any]) -> list[str]:
    """One row per calibration run (its means and the machine's load), then the median."""
    link, cap = series["link"], series.get("capacity")
    what = (f"node capacity {cap['node_cpu_m']}m at scale {cap['cpu_scale']:g} "
            f"({cap['machine_m_per_node']}m of this machine per node)" if cap
            else "no node capacity")
    lines = ["", f"Calibration runs (two-pod chain flour <- grain, link {link['latency_ms']:g} ms "
             f"/ {link['bandwidth_mbps']:g} Mbit/s, {what}; each run: p50 of 60 orders per "
             "cell, mean over the five sizes):", "",
             "| run | finished | spinning processes | load average before -> after | "
             "HTTP reduction | gRPC reduction |", "|---|---|---|---|---|---|"]
    for i, r in enumerate(series["runs"], 1):
        run = r["run"]
        lines.append(f"| {i} | {run['date']} | {run.get('spinners', 0)} | "
                     f"{run['loadavg_1m_before']} -> {run['loadavg_1m_after']} | "
                     f"{r['http']['mean_reduction_pct']:.1f} % | "
                     f"{r['grpc']['mean_reduction_pct']:.1f} % |")
    h, g = series["http"], series["grpc"]
    lines.append(f"| median (min .. max) | | | | **{h['median_pct']:.1f} %** ({h['min_pct']:.1f} "
                 f".. {h['max_pct']:.1f}), paper 66 % | **{g['median_pct']:.1f} %** "
                 f"({g['min_pct']:.1f} .. {g['max_pct']:.1f}), paper 69 % |")
    return lines


@app.command()
def main(
    quick: Annotated[bool, typer.Option(help="Fewer samples: a smoke run.")] = False,
    part: Annotated[list[str] | None, typer.Option(
        help=f"Run only these: {', '.join(PARTS + EXTRA_PARTS)} (topology only when named).")
    ] = None,
    topology: Annotated[str, typer.Option(
        help="Topology (preset or file) for the topology part; presets are built for "
             "5 nodes and --link.")] = "zones",
    link: Annotated[str, typer.Option(help="Preset for the calibration part.")] = "edge",
    latency_ms: Annotated[float | None, typer.Option(help="Override for calibration.")] = None,
    bandwidth_mbps: Annotated[float | None, typer.Option(help="Override for calibration.")
                              ] = None,
    node_cpu: Annotated[str | None, typer.Option(
        help="Calibration with capacity on: each node's CPU (4, 500m), enforced with "
             "cgroups as in `harness run --node-cpu`.")] = None,
    cpu_scale: Annotated[float | None, typer.Option(
        help="Machine CPU per node CPU for --node-cpu (default: what a node gets in a "
             "5-node run of that capacity).")] = None,
    repeat: Annotated[int, typer.Option(
        help="Calibration: run it this many times and keep every run (the spread between "
             "runs is larger than within one).")] = 1,
    spin: Annotated[int, typer.Option(
        help="Calibration: keep this many CPU-spinning processes running meanwhile, to "
             "measure how the result moves with machine load.")] = 0,
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = RESULTS,
    report: Annotated[bool, typer.Option(
        help="Print the BENCHMARKS.md section for the results in --out; measure nothing.")
    ] = False,
) -> None:
    """Measure the emulated links, the mesh overhead, relayout time, and the calibration."""
    if report:
        print(markdown(json.loads(out.read_text())), end="")
        return
    parts = part or PARTS
    unknown = set(parts) - set(PARTS + EXTRA_PARTS)
    if unknown:
        raise typer.BadParameter(f"unknown part(s) {sorted(unknown)}; "
                                 f"choose from {PARTS + EXTRA_PARTS}")
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                               "machine": _machine(), "quick": quick}
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-link-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)

    def conditions(t0: float, load0: float) -> dict[str, Any]:
        """When a part ran and how busy the machine was (each part is rerun alone)."""
        return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(time.monotonic() - t0, 1), "loadavg_1m_before": round(load0, 2),
                "loadavg_1m_after": round(os.getloadavg()[0], 2)}

    async def run() -> None:
        if {"latency", "throughput", "overhead"} & set(parts):
            t0, load0 = time.monotonic(), os.getloadavg()[0]
            results.update(await bench_links(list(LINK_PRESETS), 100 if quick else 400, tmp))
            results["links_run"] = conditions(t0, load0)
        if "relayout" in parts:
            t0, load0 = time.monotonic(), os.getloadavg()[0]
            results["relayout"] = await bench_relayout(5 if quick else 30)
            results["relayout"]["run"] = conditions(t0, load0)
        if "calibration" in parts:
            profile = resolve_link(link, latency_ms=latency_ms, bandwidth_mbps=bandwidth_mbps)
            cpu_m = None if node_cpu is None else parse_cpu(node_cpu)
            with _spinners(spin):
                runs = []
                for _ in range(repeat):
                    t0, load0 = time.monotonic(), os.getloadavg()[0]
                    runs.append(await bench_calibration(profile, 10 if quick else 60, cpu_m,
                                                        cpu_scale))
                    runs[-1]["run"] = {**conditions(t0, load0), "spinners": spin}
            results["calibration"] = runs[-1]
            if repeat > 1:
                results["calibration_runs"] = _series(runs)
        if "topology" in parts:
            topo = resolve_topology(topology, nodes=5, link=link)
            t0, load0 = time.monotonic(), os.getloadavg()[0]
            results["topology"] = await bench_topology(topo, 100 if quick else 400, tmp)
            results["topology"]["run"] = conditions(t0, load0)

    random.seed(0)
    asyncio.run(run())
    results["machine"]["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    _print_summary(results)
    if out.exists() and part:   # a partial run updates the file instead of replacing it
        results = {**json.loads(out.read_text()), **results}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    console.print(f"wrote {out}")


if __name__ == "__main__":
    app()
