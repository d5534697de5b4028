"""A sweep's report: the headline metrics of every grid point in one long table, one
table and one figure per metric, and each factor's effect in words, from the sweep
directory alone (``sweep.json`` and the points' results directories).

Files written into the sweep directory:

- ``tables/sweep.csv`` and ``.parquet``: one row per point x scheduler x metric with
  ``mean``, ``low``, ``high`` and one column per factor (the level as text);
  ``tables/sweep.json`` the same as metric -> point -> scheduler -> mean, low, high;
- ``tables/sweep_<metric>.md`` / ``.csv``: a row per point, a column per scheduler;
- ``tables/sweep_effects.csv``: per metric, factor, scheduler and combination of the
  other factors: the levels with the lowest and highest mean, the range, and whether
  the two intervals overlap;
- ``figures/sweep_<metric>.png`` / ``.svg`` and ``report.md``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import plots, render
from analysis.sweep_metrics import METRICS, point_metrics
from analysis.sweep_plots import sweep_metric_plot
from results.store import MANIFEST, ResultsStore
from results.sweep import SweepManifest, level_label, read_sweep_manifest

__all__ = ["SweepReport", "build_sweep_report", "factor_effects", "metric_table",
           "sweep_table"]


@dataclass
class SweepReport:
    path: Path
    table: pd.DataFrame
    figures: list[Path]
    missing: list[str]


def sweep_table(root: Path, manifest: SweepManifest | None = None,
                ) -> tuple[pd.DataFrame, list[str]]:
    """The long table over every point with measurements, and the names of the points
    without (not started, or nothing measured yet)."""
    manifest = manifest or read_sweep_manifest(root)
    frames, missing = [], []
    for point in manifest.points:
        directory = manifest.point_dir(root, point)
        if not (directory / MANIFEST).is_file():
            missing.append(point.name)
            continue
        metrics = point_metrics(directory)
        if metrics.empty:
            missing.append(point.name)
            continue
        finished = ResultsStore.open(directory).manifest().finished_at is not None
        labels = {f: level_label(point.values[f]) for f in manifest.factors}
        frames.append(metrics.assign(point=point.name, finished=finished, **labels))
    columns = ["point", *manifest.factors, "scheduler", "metric", "mean", "low", "high",
               "finished"]
    if not frames:
        return pd.DataFrame(columns=columns), missing
    return pd.concat(frames, ignore_index=True)[columns], missing


def metric_table(table: pd.DataFrame, metric: str, factors: list[str]) -> pd.DataFrame:
    """A row per point (``link=lan, order=file``), a "mean [low, high]" column per
    scheduler."""
    digits = METRICS[metric][2]
    sub = table[table["metric"] == metric]
    rows = []
    for _point, group in sub.groupby("point", sort=False):
        first = group.iloc[0]
        row: dict[str, Any] = {"point": ", ".join(f"{f}={first[f]}" for f in factors)}
        for r in group.itertuples():
            row[str(r.scheduler)] = render.ci_text(float(r.mean), float(r.low), float(r.high),
                                                   digits)
        if not bool(first["finished"]):
            row["point"] += " (unfinished)"
        rows.append(row)
    return pd.DataFrame(rows)


def factor_effects(table: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """Per metric, factor (with two or more levels), scheduler and combination of the
    other factors' levels: the levels with the lowest and highest mean, the range
    between them, and whether their intervals overlap (None without intervals)."""
    rows: list[dict[str, Any]] = []
    varied = [f for f in factors if table[f].nunique() > 1] if not table.empty else []
    for metric in (m for m in METRICS if m in set(table["metric"])):
        sub = table[table["metric"] == metric]
        for factor in varied:
            rest = [f for f in factors if f != factor]
            keys = ["scheduler", *rest]
            for key, group in sub.groupby(keys, sort=False):
                key = key if isinstance(key, tuple) else (key,)
                if group[factor].nunique() < 2:
                    continue
                lo = group.loc[group["mean"].idxmin()]
                hi = group.loc[group["mean"].idxmax()]
                bounded = all(math.isfinite(float(v)) for v in
                              (lo["low"], lo["high"], hi["low"], hi["high"]))
                overlap = (float(hi["low"]) <= float(lo["high"])) if bounded else None
                rows.append({
                    "metric": metric, "factor": factor, "scheduler": key[0],
                    "at": ", ".join(f"{f}={v}" for f, v in zip(rest, key[1:], strict=True)),
                    "lowest_level": str(lo[factor]), "lowest": float(lo["mean"]),
                    "highest_level": str(hi[factor]), "highest": float(hi["mean"]),
                    "range": float(hi["mean"]) - float(lo["mean"]),
                    "intervals_overlap": overlap,
                })
    return pd.DataFrame(rows)


def build_sweep_report(root: Path, *, figures: bool = True) -> SweepReport:
    """Write the sweep's tables, figures and report.md (see the module doc)."""
    root = Path(root)
    manifest = read_sweep_manifest(root)
    table, missing = sweep_table(root, manifest)
    if table.empty:
        raise ValueError(f"{root}: no point has measurements yet; nothing to report "
                         f"(continue with harness sweep --resume {root})")
    factors = list(manifest.factors)
    levels = {f: [level_label(v) for v in manifest.factors[f]] for f in factors}
    out_t, out_f = root / "tables", root / "figures"
    out_t.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_t / "sweep.csv", index=False)
    table.to_parquet(out_t / "sweep.parquet", index=False)
    (out_t / "sweep.json").write_text(json.dumps(_nested(table, factors), indent=1) + "\n")
    effects = factor_effects(table, factors)
    effects.to_csv(out_t / "sweep_effects.csv", index=False)

    sections, paths = [], []
    for metric, (title, unit, _) in METRICS.items():
        sub = table[table["metric"] == metric]
        if sub.empty:
            continue
        caption = (f"{title[0].upper()}{title[1:]}" + (f" ({unit})" if unit else "")
                   + (" [95 % interval]" if metric != "distinct_layouts" else "")
                   + ", per grid point and scheduler.")
        shown = metric_table(table, metric, factors)
        text = render.write_table(sub, shown, out_t, f"sweep_{metric}", caption)
        figure = ""
        if figures:
            label = f"{title} ({unit})" if unit else title
            path = plots.save(sweep_metric_plot(sub, metric, _wrap(label), factors, levels),
                              out_f, f"sweep_{metric}")
            paths.append(path)
            figure = f"\n![{title}](figures/{path.name})\n"
        sections.append(f"### {title[0].upper()}{title[1:]}\n\n{caption}\n\n{text}"
                        f"{_effect_text(effects, metric)}{figure}")
    path = root / "report.md"
    path.write_text(_report_text(root, manifest, table, missing,
                                 render.markdown(_glance(effects)), sections))
    return SweepReport(path=path, table=table, figures=paths, missing=missing)


def _nested(table: pd.DataFrame, factors: list[str]) -> dict[str, Any]:
    """metric -> point label (``link=lan, order=file``) -> scheduler -> mean, low, high
    (null without an interval): the long table for a dotted-path lookup."""
    out: dict[str, Any] = {}
    for r in table.itertuples(index=False):
        row = r._asdict()
        label = ", ".join(f"{f}={row[f]}" for f in factors)
        out.setdefault(str(row["metric"]), {}).setdefault(label, {})[str(row["scheduler"])] = {
            k: (float(row[k]) if math.isfinite(float(row[k])) else None)
            for k in ("mean", "low", "high")}
    return out


def _wrap(text: str, width: int = 34) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


def _num(value: float, metric: str) -> str:
    digits = METRICS[metric][2]
    return f"{value:.{digits}f}"


def _effect_text(effects: pd.DataFrame, metric: str) -> str:
    """One bullet per factor and scheduler: how far the metric moves across the factor's
    levels in each combination of the others, and whether the extremes' intervals
    overlap."""
    if effects.empty:
        return ""
    sub = effects[effects["metric"] == metric]
    unit = METRICS[metric][1]
    unit_text = " points" if unit == "%" else f" {unit}" if unit else ""
    lines = []
    for (factor, scheduler), group in sub.groupby(["factor", "scheduler"], sort=False):
        parts = []
        for r in group.itertuples():
            where = f"at {r.at}: " if r.at else ""
            low, high = _num(float(r.lowest), metric), _num(float(r.highest), metric)
            if low == high:
                parts.append(f"{where}{low} at every level")
                continue
            overlap = ("" if r.intervals_overlap is None else
                       ", intervals overlap" if r.intervals_overlap else
                       ", intervals apart")
            parts.append(f"{where}{low} ({factor}={r.lowest_level}) to {high} "
                         f"({factor}={r.highest_level})"
                         f"{overlap}")
        apart = int((group["intervals_overlap"] == False).sum())  # noqa: E712
        bounded = int(group["intervals_overlap"].notna().sum())
        verdict = (f" Across {factor}, {scheduler} moves by up to "
                   f"{_num(float(group['range'].max()), metric)}{unit_text}")
        verdict += (f"; the extremes' intervals are apart in {apart} of {bounded} "
                    "comparisons." if bounded else ".")
        lines.append(f"- **{factor}**, {scheduler}: " + "; ".join(parts) + "." + verdict)
    return ("\nEffect of each factor (lowest to highest mean across its levels):\n\n"
            + "\n".join(lines) + "\n") if lines else ""


def _glance(effects: pd.DataFrame) -> pd.DataFrame:
    """Per metric, factor and scheduler: the largest change across the factor's levels
    (over the other factors' combinations) and in how many the extremes' intervals are
    apart."""
    rows = []
    if effects.empty:
        return pd.DataFrame()
    for (metric, factor, scheduler), g in effects.groupby(["metric", "factor", "scheduler"],
                                                          sort=False):
        unit = METRICS[metric][1]
        bounded = g["intervals_overlap"].notna()
        rows.append({
            "metric": metric, "factor": factor, "scheduler": scheduler,
            "largest change": f"{_num(float(g['range'].max()), metric)}"
                              + (" points" if unit == "%" else f" {unit}" if unit else ""),
            "extremes apart": (f"{int((g.loc[bounded, 'intervals_overlap'] == False).sum())}"  # noqa: E712
                               f" of {int(bounded.sum())}") if bounded.any() else "n/a",
        })
    return pd.DataFrame(rows)


def _report_text(root: Path, manifest: SweepManifest, table: pd.DataFrame,
                 missing: list[str], glance: str, sections: list[str]) -> str:
    m = manifest.machine
    factors = "\n".join(f"- `{f}`: {', '.join(level_label(v) for v in levels)}"
                        for f, levels in manifest.factors.items())
    base = manifest.base
    settings = ", ".join(f"{k}={level_label(v)}" for k, v in (base.get("settings") or {}).items())
    finished = int(table.drop_duplicates("point")["finished"].sum())
    resumed = f" (resumed {', '.join(manifest.resumed_at)})" if manifest.resumed_at else ""
    status = (f"{len(manifest.points)} grid points; {finished} finished, "
              f"{table['point'].nunique() - finished} with partial measurements, "
              f"{len(missing)} without measurements")
    if missing:
        status += " (" + ", ".join(missing) + "; continue with `harness sweep --resume`)"
    return f"""# Sensitivity sweep

- command: `{manifest.command}`
- machine: {m.cpu}, {m.cores} cores, {m.memory_gib} GiB, Python {m.python} ({m.hostname})
- started {manifest.started_at}, finished {manifest.finished_at or 'not yet'}{resumed}
- preset: {base.get('preset') or 'none'}; experiment file: {base.get('config') or 'none'};
  sweep file: {base.get('sweep_file') or 'none'}; settings shared by every point:
  {settings or 'the defaults'}
- {status}

Factors and their levels (every combination is a grid point, an ordinary results
directory under `points/` with its own `report.md`):

{factors}

Every interval is the point's own 95 % interval, from the same estimators and two-stage
bootstrap as a run's report (layouts, then orders within a layout). The reduction at the
largest size is over every item and protocol the point measured at that size; inter-node
bytes saved is the mean over protocols of each protocol's reduction and bounds; distinct
layouts is a count, without an interval. "Intervals apart" compares the levels with
the lowest and the highest mean: apart is a conservative sign that the factor moved the
metric by more than a point's own noise; overlapping intervals do not rule a difference
out, they only say this sweep does not show one clearly.
All rows: `tables/sweep.csv` (and `.parquet`); the comparisons: `tables/sweep_effects.csv`.

## Each factor's effect at a glance

The largest change of each metric across a factor's levels (the other factors held at
each of their combinations), and in how many of those combinations the intervals of the
lowest and highest level are apart.

{glance}
## Headline metrics per grid point

{chr(10).join(sections)}
"""
