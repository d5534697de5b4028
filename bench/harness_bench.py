"""Benchmark of the experiment harness: how long its parts take on this machine.

    python3 bench/harness_bench.py            # all three parts (~5 minutes)
    python3 bench/harness_bench.py --skip-quick

Measures (wall time):
1. `harness run --scheduler netmarks --quick`, end to end, as a user runs it;
2. 1000 scheduling-only redeployments of the default economy on 5 nodes per scheduler
   (kube_default, netmarks, firmament), with the traffic matrix of a warm-up;
3. measuring one layout with the default preset's orders (8 items x 5 sizes x 5
   repetitions, + 1 warm-up order per cell) per protocol, and the cluster start.
From these it estimates the full default preset for kube_default + netmarks +
firmament and compares it with the 30-minute target. Raw results go to
bench/results/harness.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.backends.local import LocalOptions, open_local
from harness.measure import measure_layout, telemetry_delta
from results import provenance
from results.config import build_config

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "harness.json"
SCHEDULERS = ["kube_default", "netmarks", "firmament"]


def bench_quick() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "quick"
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", "from harness.cli import main; main()", "run",
             "--scheduler", "netmarks", "--quick", "--out", str(out)],
            capture_output=True, text=True, check=False,
        )
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"--quick failed:\n{done.stderr[-3000:]}")
        headline = (out / "tables" / "headline.csv").read_text()
        manifest = json.loads((out / "manifest.json").read_text())
    return {"seconds": round(seconds, 1), "target_s": 180, "headline_csv": headline,
            "traffic_source": manifest.get("traffic_source")}


async def _one_layout() -> dict[str, Any]:
    from order_app import run_sweep

    cfg = build_config()  # the default preset
    placer, planes = open_local(cfg.load_economy(), LocalOptions(cfg.nodes, cfg.link))
    placements = await placer.place("kube_default", 2, traffic=None, seed=7)
    out: dict[str, Any] = {"items": cfg.item_list(), "sizes": cfg.sizes,
                           "repetitions": cfg.repetitions}
    traffic = None
    for protocol in cfg.protocols:
        t0 = time.perf_counter()
        plane = await planes.start(protocol, placements[0].assignments)
        start_s = time.perf_counter() - t0
        try:
            if traffic is None:  # a warm-up for part 2, on the first cluster
                before = plane.traffic_snapshot()
                t1 = time.perf_counter()
                await run_sweep({i: plane.entry(i) for i in cfg.item_list()}, protocol,
                                cfg.item_list(), cfg.sizes, repeat=1, warmup=0, progress=False)
                traffic = _traffic(telemetry_delta(before, plane.traffic_snapshot()),
                                   time.perf_counter() - t1)
            t0 = time.perf_counter()
            samples, _ = await measure_layout(
                plane, placements[1].assignments, layout_id="bench", protocol=protocol,
                items=cfg.item_list(), sizes=cfg.sizes, count=cfg.count,
                repeat=cfg.repetitions,
            )
            measure_s = time.perf_counter() - t0
        finally:
            await plane.stop()
        out[protocol] = {"cluster_start_s": round(start_s, 2), "measure_s": round(measure_s, 2),
                         "orders": len(samples), "failed": int((~samples["ok"]).sum())}
    out["traffic"] = traffic
    return out


def _traffic(delta: Any, seconds: float) -> list[dict[str, Any]]:
    rows = delta.groupby(["source_workload", "destination_workload"], as_index=False)["bytes"]
    return [{"source": r.source_workload, "destination": r.destination_workload,
             "bytes_per_s": float(r.bytes) / seconds} for r in rows.sum().itertuples()]


async def _scheduling(traffic_rows: list[dict[str, Any]], n: int) -> dict[str, Any]:
    import pandas as pd

    from schedulers import TrafficMatrix

    cfg = build_config()
    placer, _ = open_local(cfg.load_economy(), LocalOptions(cfg.nodes, cfg.link))
    traffic = TrafficMatrix.from_dataframe(pd.DataFrame(traffic_rows))
    out: dict[str, Any] = {}
    for scheduler in SCHEDULERS:
        t0 = time.perf_counter()
        placements = await placer.place(scheduler, n, traffic=traffic, seed=1)
        seconds = time.perf_counter() - t0
        distinct = len({placer.canonical(p.assignments) for p in placements})
        out[scheduler] = {"redeployments": n, "seconds": round(seconds, 2),
                          "distinct_layouts": distinct}
    return out


def estimate_full(layout: dict[str, Any], sched: dict[str, Any]) -> dict[str, Any]:
    cfg = build_config(overrides={"schedulers": SCHEDULERS})
    starts = sum(layout[p]["cluster_start_s"] for p in cfg.protocols)
    per_layout = sum(layout[p]["measure_s"] for p in cfg.protocols)
    scheduling = sum(v["seconds"] * cfg.deployments / v["redeployments"] for v in sched.values())
    # The budget caps the measured layouts; fewer are needed when schedulers repeat themselves.
    distinct = sum(min(v["distinct_layouts"], cfg.layout_budget) for v in sched.values())
    layouts = min(cfg.layout_budget, distinct)
    total = starts + cfg.warmup_seconds + 10 + scheduling + layouts * per_layout
    return {"layout_budget": cfg.layout_budget, "layouts_measured": layouts,
            "per_layout_both_protocols_s": round(per_layout, 1),
            "scheduling_s": round(scheduling, 1), "cluster_starts_s": round(starts, 1),
            "estimated_total_min": round(total / 60, 1), "target_min": 30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-quick", action="store_true")
    parser.add_argument("--redeployments", type=int, default=1000)
    args = parser.parse_args()
    result: dict[str, Any] = {
        "date": provenance.now(), "machine": provenance.machine(),
        "versions": provenance.versions(), "load_avg_start": os.getloadavg(),
    }
    layout = asyncio.run(_one_layout())
    result["one_layout"] = {k: v for k, v in layout.items() if k != "traffic"}
    print("one layout:", json.dumps(result["one_layout"]), flush=True)
    result["scheduling"] = asyncio.run(_scheduling(layout["traffic"], args.redeployments))
    print("scheduling:", json.dumps(result["scheduling"]), flush=True)
    result["estimate_full_default"] = estimate_full(layout, result["scheduling"])
    print("estimate:", json.dumps(result["estimate_full_default"]), flush=True)
    if not args.skip_quick:
        result["quick"] = bench_quick()
        print("quick:", json.dumps({k: v for k, v in result["quick"].items()}), flush=True)
    result["load_avg_end"] = os.getloadavg()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
