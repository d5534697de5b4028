#!/usr/bin/env python3
"""The paper preset with replications against today's single run: wall time and the
width of the headline interval (issue 14's benchmark).

Reads result directories only (nothing is measured here):

    python3 bench/paper_preset.py --paper runs/paper --today runs/default-a \\
        --today runs/default-b          # writes bench/results/paper-preset.json
    python3 bench/paper_preset.py --report   # the BENCHMARKS table for that file

``--paper``: a ``harness run --preset paper`` directory (replications, time budget);
``--today``: runs of today's design (``harness run --scheduler netmarks``: 30 layouts x
5 orders, one run). The headline is netmarks' reduction of the mean response time at
the largest size, mean over items (``analysis.replicates``' ``rt_reduction_largest_pct``,
the same code for both). Today's runs are re-reported with this checkout's estimator
(block bootstrap) so both widths come from one method.

"Today's width at the paper run's time" is today's width x sqrt(today's time / the
paper run's time): what today's design would reach with that much more time if its
within-run interval were honest (the square-root law; an extrapolation, stated as one).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "paper-preset.json"
METRIC, SCHEDULER = "rt_reduction_largest_pct", "netmarks"


def _num(value: Any, digits: int = 2) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, digits)
    return value


def _minutes(manifest: Any) -> float:
    start = datetime.fromisoformat(manifest.started_at)
    end = datetime.fromisoformat(manifest.finished_at)
    return (end - start).total_seconds() / 60


def _where(manifest: Any) -> dict[str, Any]:
    m = manifest.machine
    return {"started_at": manifest.started_at, "finished_at": manifest.finished_at,
            "cpu": m.cpu, "cores": m.cores, "load_avg_at_start": m.load_avg_at_start,
            "load_avg_at_finish": manifest.load_avg_at_finish}


def _headline(frame: pd.DataFrame) -> pd.Series:
    row = frame[(frame["metric"] == METRIC) & (frame["scheduler"] == SCHEDULER)]
    if row.empty:
        raise SystemExit(f"no {METRIC} row for {SCHEDULER}")
    return row.iloc[0]


def today_run(root: Path) -> dict[str, Any]:
    from analysis.replicates import replicate_estimates
    from analysis.tables import load_run
    from results.allocation import spent_seconds

    run = load_run(root)
    row = _headline(replicate_estimates(run, 1, run.config.seed))
    spent = spent_seconds(run.samples)
    return {
        "dir": root.name, **_where(run.manifest), "wall_minutes": _minutes(run.manifest),
        "measure_minutes": spent / 60 if spent else None,
        "layouts": int(run.samples["layout_id"].nunique()),
        "repetitions": run.config.repetitions,
        "value": float(row["value"]), "ci_low": float(row["ci_low"]),
        "ci_high": float(row["ci_high"]),
        "width": float(row["ci_high"] - row["ci_low"]),
    }


def paper_run(root: Path) -> dict[str, Any]:
    from analysis.tables import load_run
    from results.allocation import spent_seconds
    from results.store import ResultsStore

    manifest = ResultsStore.open(root).manifest()
    est = pd.read_csv(root / "tables" / "replicate_estimates.csv")
    comb = _headline(pd.read_csv(root / "tables" / "replicates_combined.csv"))
    reps = []
    for r in manifest.replicates or []:
        run = load_run(root / r.path)
        row = _headline(est[est["replicate"] == r.index])
        alloc = run.manifest.allocation
        reps.append({
            "replicate": r.index, "seed": r.seed,
            "wall_minutes": _minutes(run.manifest),
            "measure_minutes": spent_seconds(run.samples) / 60,
            "layouts": int(run.samples["layout_id"].nunique()),
            "repetitions_after_pilot": alloc.repetitions if alloc else None,
            "rho": alloc.rho if alloc else None,
            "value": float(row["value"]), "ci_low": float(row["ci_low"]),
            "ci_high": float(row["ci_high"]),
            "width": float(row["ci_high"] - row["ci_low"]),
        })
    return {
        "dir": root.name, **_where(manifest), "wall_minutes": _minutes(manifest),
        "time_budget_minutes": (manifest.config.time_budget or 0) / 60,
        "replicates": reps,
        "combined": {"mean": float(comb["mean"]), "ci_low": float(comb["ci_low"]),
                     "ci_high": float(comb["ci_high"]),
                     "width": float(comb["ci_high"] - comb["ci_low"]),
                     "sd_between": float(comb["sd_between"]),
                     "sd_over_se_within": float(comb["sd_between_over_se_within"])},
    }


def compare(paper: dict[str, Any], today: list[dict[str, Any]],
            budgeted: list[dict[str, Any]]) -> dict[str, Any]:
    t_width = statistics.median(t["width"] for t in today)
    t_minutes = statistics.median(t["wall_minutes"] for t in today)
    same_time = t_width * math.sqrt(t_minutes / paper["wall_minutes"])
    rep_width = statistics.median(r["width"] for r in paper["replicates"])
    return {
        "today_width": t_width, "today_wall_minutes": t_minutes,
        "today_width_at_paper_time": same_time,
        "paper_width": paper["combined"]["width"],
        # Today's interval widened by how much too narrow one run's interval proved
        # (the replicates' SD over the within-run SE): what it would be if honest.
        "today_width_at_paper_time_honest":
            same_time * paper["combined"]["sd_over_se_within"],
        "ratio_paper_to_today_at_same_time": paper["combined"]["width"] / same_time,
        "replicate_within_width_median": rep_width,
        "ratio_replicate_within_to_today": rep_width / t_width,
        # One budgeted run against today's, per sqrt(minute): the allocation's own effect.
        "ratio_budgeted_to_today_same_time": (
            statistics.median(b["width"] * math.sqrt(b["wall_minutes"]) for b in budgeted)
            / statistics.median(t["width"] * math.sqrt(t["wall_minutes"]) for t in today)
            if budgeted else None),
        "target_ratio": 0.5,
    }


def markdown(data: dict[str, Any]) -> str:
    """The tables BENCHMARKS.md shows, rendered from the JSON."""
    return "\n\n".join(_tables(data))


def _tables(data: dict[str, Any]) -> list[str]:
    p, c = data["paper"], data["comparison"]
    rows = ["| run | wall time (min) | layouts measured | orders per cell per layout | "
            "netmarks' reduction at 1 MiB (%) [95 % CI] | interval width (points) |",
            "|---|---|---|---|---|---|"]
    for t in data["today"]:
        rows.append(f"| today's design, {t['started_at'][:16]} | {t['wall_minutes']:.1f} | "
                    f"{t['layouts']} | {t['repetitions']} | {t['value']:.1f} "
                    f"[{t['ci_low']:.1f}, {t['ci_high']:.1f}] | {t['width']:.1f} |")
    for b in data.get("budgeted", []):
        rows.append(f"| today's settings with --time-budget, {b['started_at'][:16]} | "
                    f"{b['wall_minutes']:.1f} | {b['layouts']} | pilot, then 1-5 | "
                    f"{b['value']:.1f} [{b['ci_low']:.1f}, {b['ci_high']:.1f}] | "
                    f"{b['width']:.1f} |")
    for r in p["replicates"]:
        rows.append(f"| paper preset, replicate {r['replicate']} | {r['wall_minutes']:.1f} | "
                    f"{r['layouts']} | pilot, then {r['repetitions_after_pilot']} | "
                    f"{r['value']:.1f} [{r['ci_low']:.1f}, {r['ci_high']:.1f}] | "
                    f"{r['width']:.1f} |")
    k = p["combined"]
    rows.append(f"| paper preset, combined (t, {len(p['replicates']) - 1} df) | "
                f"{p['wall_minutes']:.1f} | | | {k['mean']:.1f} [{k['ci_low']:.1f}, "
                f"{k['ci_high']:.1f}] | {k['width']:.1f} |")
    ratios = ["| comparison | value |", "|---|---|",
              f"| today's width at the paper run's time (sqrt law) | "
              f"{c['today_width_at_paper_time']:.1f} |",
              f"| paper preset's combined width / that | "
              f"{c['ratio_paper_to_today_at_same_time']:.2f} |",
              f"| that width x the measured SD / within-run SE (if it were honest) | "
              f"{c['today_width_at_paper_time_honest']:.1f} |",
              f"| a replicate's within-run width / today's (similar time each) | "
              f"{c['ratio_replicate_within_to_today']:.2f} |",
              *([f"| one budgeted run's width / today's, at equal time (width x sqrt(min)) | "
                 f"{c['ratio_budgeted_to_today_same_time']:.2f} |"]
                if c.get("ratio_budgeted_to_today_same_time") is not None else []),
              f"| between-replicate SD / within-run SE | {k['sd_over_se_within']:.2f} |"]
    return ["\n".join(rows), "\n".join(ratios)]


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return _num(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paper", type=Path, help="a --preset paper results directory")
    parser.add_argument("--today", type=Path, action="append", default=[],
                        help="a run of today's design (repeatable)")
    parser.add_argument("--budgeted", type=Path, action="append", default=[],
                        help="a single run of today's settings with --time-budget, about "
                             "as long as a --today run (repeatable)")
    parser.add_argument("--report", action="store_true", help="print the tables")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.report:
        print(markdown(json.loads(args.out.read_text())))
        return
    if args.paper is None or not args.today:
        parser.error("--paper and at least one --today are needed (or --report)")
    paper, today = paper_run(args.paper), [today_run(t) for t in args.today]
    budgeted = [today_run(b) for b in args.budgeted]
    data = _json_safe({"paper": paper, "today": today, "budgeted": budgeted,
                       "comparison": compare(paper, today, budgeted)})
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(markdown(data))


if __name__ == "__main__":
    main()
