#!/usr/bin/env python3
"""What the new physics says: experiment runs with node capacity and load, summarised.

Issue 13 asked for the paper preset run with capacity on, at no load and at two loads,
on the `uniform` and `zones` topologies, with kube_default, netmarks and firmament.
Those runs are `harness run` result directories; this script reads their tables and
manifests (nothing is measured here) and commits the figures the docs quote:

    python3 bench/physics_runs.py --run uniform=runs/u --run zones=runs/z
        # writes bench/results/physics-runs.json
    python3 bench/physics_runs.py --report   # the BENCHMARKS / docs tables for that file

tests/unit/test_docs_numbers.py holds docs/experiment.md and BENCHMARKS.md against the
JSON; the run directories' reports are committed under docs/examples/.
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "physics-runs.json"
CONFIG_KEYS = ("schedulers", "deployments", "nodes", "link", "node_cpu", "protocols", "sizes",
               "items", "repetitions", "layout_budget", "seed", "economy", "load",
               "load_in_traffic")


def _num(value: Any) -> Any:
    """JSON-safe numbers: NaN becomes None, floats keep 4 decimals."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    return value


def _rows(path: Path) -> list[dict[str, Any]]:
    frame = pd.read_csv(path)
    return [{k: _num(v) for k, v in row.items()} for row in frame.to_dict("records")]


def summarise(run_dir: Path) -> dict[str, Any]:
    """The figures of one run directory, with what was run and how busy the machine was."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    tables = run_dir / "tables"
    config = manifest["config"]
    topology = config.get("topology")
    return {
        "dir": run_dir.name,
        "config": {k: config.get(k) for k in CONFIG_KEYS},
        "topology": (topology or {}).get("name", "uniform") if isinstance(topology, dict)
        else (topology or "uniform"),
        "link_profile": manifest.get("link_profile"),
        "capacity": (manifest.get("capacity") or {}).get("summary", "off"),
        "started_at": manifest["started_at"],
        "finished_at": manifest.get("finished_at"),
        "load_avg_at_start": manifest["machine"].get("load_avg_at_start"),
        "load_avg_at_finish": manifest.get("load_avg_at_finish"),
        "machine": {k: manifest["machine"].get(k) for k in ("cpu", "cores", "memory_gib")},
        "git": manifest.get("versions", {}).get("git"),
        "headline": {r["scheduler"]: r for r in _rows(tables / "headline.csv")},
        "vs_load": _rows(tables / "response_time_vs_load.csv"),
        "background": _rows(tables / "background_load.csv"),
        "layouts": {r["scheduler"]: r for r in _rows(tables / "layouts.csv")},
        # per item class and the paired test (reports from before those tables: none)
        "by_class": {f"{r['item_class']}|{r['protocol']}|{r['scheduler']}": r
                     for r in _optional_rows(tables / "reduction_by_class.csv")},
        "paired": {f"{r['scheduler']}|{r['cells']}": r
                   for r in _optional_rows(tables / "paired_test.csv")},
    }


def _optional_rows(path: Path) -> list[dict[str, Any]]:
    return _rows(path) if path.is_file() else []


def _ci(row: dict[str, Any], key: str, low: str, high: str, unit: str = "") -> str:
    return f"{row[key]:.1f}{unit} [{row[low]:.1f}, {row[high]:.1f}]"


def _vs_load_md(run: dict[str, Any]) -> list[str]:
    schedulers = run["config"]["schedulers"]
    others = [s for s in schedulers if s != "kube_default"]
    head = ["protocol", "load (orders/s)", "achieved (all chunks)", "kube_default (ms)"]
    for s in others:
        head += [f"{s} (ms)", f"{s} vs kube_default (%)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = run["vs_load"]
    keys = sorted({(r["protocol"], r["load_rps"]) for r in rows})
    for protocol, load in keys:
        cell = {r["scheduler"]: r for r in rows
                if r["protocol"] == protocol and r["load_rps"] == load}
        achieved = next((b["achieved_rps"] for b in run["background"]
                         if b["protocol"] == protocol and b["offered_rps"] == load), 0.0)
        out = [protocol, f"{load:g}", f"{achieved:.1f}",
               _ci(cell["kube_default"], "mean", "ci_low", "ci_high")]
        for s in others:
            out += [_ci(cell[s], "mean", "ci_low", "ci_high"),
                    _ci(cell[s], "reduction_pct", "reduction_ci_low_pct",
                        "reduction_ci_high_pct")]
        lines.append("| " + " | ".join(out) + " |")
    return lines


def _headline_md(run: dict[str, Any]) -> list[str]:
    lines = ["| scheduler | mean RT at 1 MiB, no load (ms) | reduction, mean over items (%) "
             "| inter-node transfers (%) | inter-node bytes saved (%) | distinct layouts | "
             "layouts measured |", "|---|---|---|---|---|---|---|"]
    for name, h in run["headline"].items():
        lay = run["layouts"][name]
        lines.append(f"| {name} | {h['mean_rt_largest_ms']:.1f} | {h['rt_reduction_mean_pct']:.1f} "
                     f"| {h['inter_node_transfers_pct']:.1f} | "
                     f"{h['inter_node_bytes_reduction_pct']:.1f} | {h['distinct_layouts']} | "
                     f"{lay['layouts_measured']} |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    """One section per run: what ran, response time against load, the no-load headline."""
    lines: list[str] = []
    for name, run in results["runs"].items():
        c = run["config"]
        lines += [f"#### `{name}`: topology {run['topology']}, node CPU {c['node_cpu']}, "
                  f"loads {', '.join(f'{x:g}' for x in c['load'])} orders/s", "",
                  f"{run['capacity']}; started {run['started_at']}, finished "
                  f"{run['finished_at']}; load average {run['load_avg_at_start']} at the start, "
                  f"{run['load_avg_at_finish']} at the finish.", ""]
        lines += [*_vs_load_md(run), "", *_headline_md(run), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", default=[], metavar="NAME=DIR",
                        help="a run directory to summarise, under a name (repeatable)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--report", action="store_true",
                        help="print the tables for --out; read no run")
    args = parser.parse_args()
    if args.report:
        print(markdown(json.loads(args.out.read_text())), end="")
        return
    if not args.run:
        parser.error("give at least one --run NAME=DIR (or --report)")
    runs = {}
    for spec in args.run:
        name, sep, path = spec.partition("=")
        if not sep or not (Path(path) / "manifest.json").is_file():
            parser.error(f"--run {spec!r}: expected NAME=DIR with DIR a harness run directory")
        runs[name] = summarise(Path(path))
    results = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "runs": runs}
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(markdown(results), end="")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
