#!/usr/bin/env python3
"""Node capacity on the emulated cluster: is the CPU quota what was configured, and
what does moving pods between nodes' groups cost?

1. *share*: a process spinning on the CPU in a node's group (harness.backends.emulated
   .capacity, scale 1) for a few seconds; measured share = its CPU seconds / wall
   seconds, against the configured quota, per capacity, several runs each;
2. *relayout*: the 19-pod default economy with capacity on (5 nodes of 2 CPU at the
   default scale), random layouts of every pod, timing ``EmulatedCluster.relayout``
   (mesh + groups) and the groups' part alone (``NodeGroups.place``).

Needs root and the cgroup cpu controller (v1 or v2); says so and stops otherwise.

    python3 bench/capacity.py            # writes bench/results/capacity.json
    python3 bench/capacity.py --quick    # fewer samples, a smoke run
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from harness.backends.emulated import ClusterSpec, EmulatedCluster
from harness.backends.emulated.capacity import NodeGroups, process_cpu_seconds
from harness.backends.emulated.placement import random_placement

RESULTS = Path(__file__).resolve().parent / "results" / "capacity.json"
CAPACITIES_M = [100, 250, 500, 1000]
SHARE_TARGET_PCT = 10.0
RELAYOUT_TARGET_MS = 5.0

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
console = Console()

_SPIN = "while True: pass"


def bench_share(runs: int, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    groups = NodeGroups.create({f"node-{c}m": c for c in CAPACITIES_M}, scale=1.0)
    if not groups.status.enforced:
        raise SystemExit(f"cannot enforce capacity here: {groups.status.reason}")
    try:
        for cap in CAPACITIES_M:
            shares = []
            for _ in range(runs):
                proc = subprocess.Popen([sys.executable, "-c", _SPIN])
                try:
                    groups.place({proc.pid: f"node-{cap}m"})
                    before, t0 = process_cpu_seconds([proc.pid]), time.monotonic()
                    time.sleep(seconds)   # the measurement window itself
                    used = process_cpu_seconds([proc.pid]) - before
                    shares.append(used / (time.monotonic() - t0) * 1000)
                finally:
                    proc.kill()
                    proc.wait()
            median = statistics.median(shares)
            out[str(cap)] = {
                "configured_m": cap, "measured_m": [round(s, 1) for s in shares],
                "median_m": round(median, 1), "min_m": round(min(shares), 1),
                "max_m": round(max(shares), 1),
                "error_pct": round((median - cap) / cap * 100, 1),
                "ok": abs(median - cap) / cap * 100 <= SHARE_TARGET_PCT}
            console.print(f"{cap}m: measured {median:.0f}m (runs {shares})")
    finally:
        groups.remove()
    return {"runs": runs, "seconds": seconds, "version": groups.status.version,
            "capacities": out}


async def bench_relayout(rounds: int) -> dict[str, Any]:
    spec = ClusterSpec(nodes=5, node_cpu_m=2000, prometheus=False)
    t0 = time.monotonic()
    cluster = await EmulatedCluster.start(spec)
    started_s = time.monotonic() - t0
    try:
        assert cluster.capacity is not None
        if not cluster.capacity.enforced:
            raise SystemExit(f"cannot enforce capacity here: {cluster.capacity.reason}")
        groups = cluster._groups
        assert groups is not None
        names = [p.name for p in cluster.pods]
        full, moves = [], []
        for i in range(rounds):
            layout = random_placement(names, cluster.node_names, seed=i)
            t = time.perf_counter()
            await cluster.relayout(layout)
            full.append(time.perf_counter() - t)
            # The groups' part alone: every pod back where the previous layout had it.
            previous = random_placement(names, cluster.node_names, seed=rounds + i)
            pids = {cluster._procs[n].child.pid: previous[n] for n in names}
            t = time.perf_counter()
            groups.place(pids)
            moves.append(time.perf_counter() - t)
            groups.place({cluster._procs[n].child.pid: layout[n] for n in names})
        status = cluster.capacity.to_json()
    finally:
        await cluster.stop()

    def ms(xs: list[float], q: float) -> float:
        return round(statistics.quantiles(xs, n=100)[int(q) - 1] * 1000, 3) if q != 50 \
            else round(statistics.median(xs) * 1000, 3)

    return {"rounds": rounds, "pods": len(names), "started_s": round(started_s, 1),
            "scale": status["scale"], "quota_m": status["quota_m"],
            "relayout_p50_ms": ms(full, 50), "relayout_p90_ms": ms(full, 90),
            "relayout_max_ms": round(max(full) * 1000, 3),
            "groups_p50_ms": ms(moves, 50), "groups_p90_ms": ms(moves, 90),
            "groups_max_ms": round(max(moves) * 1000, 3),
            "ok": ms(full, 50) <= RELAYOUT_TARGET_MS}


def markdown(result: dict[str, Any]) -> str:
    """The BENCHMARKS.md tables for a result."""
    lines = ["| capacity (scale 1) | measured share, median | runs (min .. max) | error "
             "| within 10 % |", "|---:|---:|---:|---:|---|"]
    for row in result["share"]["capacities"].values():
        lines.append(f"| {row['configured_m']}m | {row['median_m']:.1f}m | "
                     f"{row['min_m']:.1f} .. {row['max_m']:.1f}m | {row['error_pct']:+.1f} % | "
                     f"{'yes' if row['ok'] else 'no'} |")
    r = result["relayout"]
    lines += ["", "| 19-pod relayout, every pod re-placed | p50 | p90 | max | target p50 |",
              "|---|---:|---:|---:|---|",
              f"| `EmulatedCluster.relayout` (mesh + groups) | {r['relayout_p50_ms']:.2f} ms | "
              f"{r['relayout_p90_ms']:.2f} ms | {r['relayout_max_ms']:.2f} ms | "
              f"5 ms: {'met' if r['ok'] else 'missed'} |",
              f"| the groups' part (`NodeGroups.place`) | {r['groups_p50_ms']:.2f} ms | "
              f"{r['groups_p90_ms']:.2f} ms | {r['groups_max_ms']:.2f} ms | |"]
    return "\n".join(lines)


@app.command()
def main(
    quick: Annotated[bool, typer.Option(help="fewer samples (a smoke run)")] = False,
    out: Annotated[Path, typer.Option(help="result JSON")] = RESULTS,
) -> None:
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }
    result["share"] = bench_share(runs=2 if quick else 5, seconds=1.0 if quick else 3.0)
    result["relayout"] = asyncio.run(bench_relayout(10 if quick else 50))
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    console.print(markdown(result), markup=False, highlight=False)
    console.print(f"written {out}")


if __name__ == "__main__":
    app()
