"""``report.md``, tables and a figure for a replicated run (``--replicates K``).

Each replicate's own report is written into its directory first (tables and report.md;
its figures only on request, they are the slow part), then the top level combines
their headline numbers (``analysis.replicates``): every estimate per replicate with
its within-run interval, the mean over the replicates with a t interval on the
replicate estimates, the between-replicate SD and range, and the ratio of that SD to
the within-run standard error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from analysis import plots, render, tables
from analysis.replicates import (
    METRICS,
    ReplicateDir,
    beside_paper_combined,
    beside_paper_long,
    combine,
    replicate_dirs,
    replicate_estimates,
)
from analysis.report import build_report
from results.manifest import Manifest
from results.store import ResultsStore, StoreError

__all__ = ["ReplicateStatus", "ReplicatedReport", "build_replicated_report",
           "replicates_plot"]

# The metrics the figure shows, one panel each.
_PLOTTED = ("rt_reduction_largest_pct", "rt_reduction_overall_pct",
            "inter_node_transfers_pct")


@dataclass
class ReplicateStatus:
    replicate: ReplicateDir
    report: Path | None  # its report.md; None when it has no measurements yet
    status: str  # in words, for the report


@dataclass
class ReplicatedReport:
    path: Path
    combined: pd.DataFrame  # analysis.replicates.combine's table
    replicates: list[ReplicateStatus]
    figures: list[Path]


def build_replicated_report(root: Path, *, figures: bool = True,
                            replicate_figures: bool = False) -> ReplicatedReport:
    """Write each replicate's report, then the top level's tables/, figures/ (unless
    ``figures`` is False) and report.md into ``root``."""
    root = Path(root)
    manifest = ResultsStore.open(root).manifest()
    confidence = manifest.config.confidence
    statuses, estimates, besides = [], [], []
    for rep in replicate_dirs(root):
        status, run = _replicate(rep, replicate_figures)
        statuses.append(status)
        if run is not None:
            estimates.append(replicate_estimates(run, rep.index, rep.seed))
            besides.append(beside_paper_long(run))
    if not estimates:
        raise ValueError(f"{root}: no replicate has measurements yet; nothing to report "
                         "(resume the run)")
    est = pd.concat(estimates, ignore_index=True)
    combined = combine(est, confidence)
    out_t = root / "tables"
    indices = [s.replicate.index for s in statuses if s.report is not None]
    level = f"{confidence * 100:.0f} %"
    render.write_table(est, est, out_t, "replicate_estimates",
                       "Each replicate's headline numbers with its within-run interval.")
    md_combined = render.write_table(
        combined, _pretty_combined(combined, est, indices), out_t, "replicates_combined",
        f"Per headline number and scheduler: each replicate's estimate [{level} within-run "
        f"interval], the mean over the replicates [{level} t interval, K-1 df], the "
        "between-replicate SD and range, and SD / within-run SE.")
    beside = beside_paper_combined(besides, confidence)
    md_beside = render.write_table(beside, _pretty_beside(beside), out_t,
                                   "beside_paper_combined",
                                   "The paper's figures beside the replicates' mean.")
    paths = []
    if figures:
        paths.append(plots.save(replicates_plot(est, combined), root / "figures", "replicates"))
    path = root / "report.md"
    path.write_text(_text(manifest, statuses, md_combined, md_beside, paths, level))
    return ReplicatedReport(path=path, combined=combined, replicates=statuses, figures=paths)


def _replicate(rep: ReplicateDir, figures: bool) -> tuple[ReplicateStatus, tables.RunData | None]:
    """One replicate's report and data, or why it has none."""
    try:
        sub = ResultsStore.open(rep.root)
        manifest = sub.manifest()
    except StoreError:
        return ReplicateStatus(rep, None, "not started"), None
    try:
        report = build_report(rep.root, figures=figures)
        full = tables.load_run(rep.root)
    except (StoreError, ValueError):
        return ReplicateStatus(rep, None, "no measurements yet"), None
    run = full.at_load(min(full.loads)) if full.loads else full
    planned = run.plan.chunks(run.config.protocols) * max(1, len(run.loads))
    done = len(sub.done_chunks())
    state = "finished" if manifest.finished_at else "NOT FINISHED"
    status = f"{state}, {done} of {planned} chunks measured"
    return ReplicateStatus(rep, report.path, status), run


def _ci(mean: float, low: float, high: float) -> str:
    return render.ci_text(mean, low, high)


def _pretty_combined(combined: pd.DataFrame, est: pd.DataFrame,
                     indices: list[int]) -> pd.DataFrame:
    rows = []
    by = est.set_index(["metric", "group", "scheduler", "replicate"])
    for r in combined.to_dict("records"):
        row = {"headline": METRICS.get(r["metric"], r["metric"]), "group": r["group"],
               "scheduler": r["scheduler"]}
        for i in indices:
            key = (r["metric"], r["group"], r["scheduler"], i)
            if key in by.index:
                e = by.loc[key]
                row[f"r{i} [within-run CI]"] = _ci(float(e["value"]), float(e["ci_low"]),
                                                   float(e["ci_high"]))
            else:
                row[f"r{i} [within-run CI]"] = "n/a"
        row["combined [t CI]"] = _ci(r["mean"], r["ci_low"], r["ci_high"])
        row["SD between"] = _num(r["sd_between"])
        row["range"] = (f"{r['min']:.1f} .. {r['max']:.1f}"
                        if math.isfinite(r["min"]) else "n/a")
        row["SD / within SE"] = _num(r["sd_between_over_se_within"], 2)
        rows.append(row)
    return pd.DataFrame(rows)


def _pretty_beside(beside: pd.DataFrame) -> pd.DataFrame:
    if beside.empty:
        return beside
    rows = []
    for r in beside.to_dict("records"):
        combined = _ci(r["mean"], r["ci_low"], r["ci_high"])
        if math.isfinite(r["baseline_mean"]) and r["kind"] != "count":
            combined = (f"{_ci(r['baseline_mean'], r['baseline_ci_low'], r['baseline_ci_high'])}"
                        f" vs {combined}")
        rows.append({"claim": r["claim"], "kind": str(r["kind"]).upper(),
                     "paper (NetMARKS vs default)": r["paper"],
                     "this run: compared with": r["compared_with"],
                     "scheduler": f"{r['scheduler']} vs {r['baseline']}",
                     "per replicate": r["per_replicate"],
                     "mean over replicates [t CI]": combined})
    return pd.DataFrame(rows)


def _num(x: float, digits: int = 1) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def replicates_plot(est: pd.DataFrame, combined: pd.DataFrame) -> Figure:
    """Per headline metric (a panel) and scheduler: each replicate's estimate with its
    within-run interval, and the combined mean with its t interval (black)."""
    sns.set_theme(style="whitegrid", context="paper")
    metrics = [m for m in _PLOTTED if m in set(est["metric"])]
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(4.2 * max(len(metrics), 1), 3.4),
                             squeeze=False)
    replicates = sorted(set(est["replicate"]))
    palette = sns.color_palette("colorblind", len(replicates))
    step = 0.7 / (len(replicates) + 1)
    for ax, metric in zip(axes[0], metrics, strict=False):
        mine = est[est["metric"] == metric]
        group = str(mine["group"].iloc[0])
        mine = mine[mine["group"] == group]
        schedulers = list(dict.fromkeys(mine["scheduler"]))
        for x, scheduler in enumerate(schedulers):
            for j, rep in enumerate(replicates):
                e = mine[(mine["scheduler"] == scheduler) & (mine["replicate"] == rep)]
                if e.empty:
                    continue
                v, lo, hi = (float(e[c].iloc[0]) for c in ("value", "ci_low", "ci_high"))
                ax.errorbar(x - 0.35 + (j + 0.5) * step, v,
                            yerr=[[max(v - lo, 0)], [max(hi - v, 0)]] if math.isfinite(lo)
                            else None, fmt="o", ms=4, capsize=2, color=palette[j],
                            label=f"r{rep}" if x == 0 else None)
            c = combined[(combined["metric"] == metric) & (combined["group"] == group)
                         & (combined["scheduler"] == scheduler)]
            if not c.empty:
                m, lo, hi = (float(c[k].iloc[0]) for k in ("mean", "ci_low", "ci_high"))
                ax.errorbar(x + 0.35 - step / 2, m,
                            yerr=[[max(m - lo, 0)], [max(hi - m, 0)]] if math.isfinite(lo)
                            else None, fmt="D", ms=5, capsize=3, color="black",
                            label="combined (t CI)" if x == 0 else None)
        ax.set_xticks(range(len(schedulers)), schedulers)
        ax.set_xlim(-0.6, len(schedulers) - 0.4)
        ax.set_title(METRICS[metric].replace(", mean over", ",\nmean over"), fontsize="small")
        ax.set_ylabel("%")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def _text(manifest: Manifest, statuses: list[ReplicateStatus], md_combined: str,
          md_beside: str, figures: list[Path], level: str) -> str:
    c = manifest.config
    k = c.replicates
    rows = "\n".join(
        f"| r{s.replicate.index} | {s.replicate.seed} | "
        f"`{s.replicate.root.relative_to(s.replicate.root.parent.parent)}/report.md` | "
        f"{s.status} |" for s in statuses)
    sampling = (f"layout budget {c.layout_budget};\n  {c.repetitions} orders per item x "
                "size per layout" if c.time_budget is None else
                f"measurement budget {c.time_budget:g} s for the run, "
                f"{c.time_budget / k:g} s per replicate:\n  each replicate's pilot chose its "
                "layouts and orders per layout (its report's Measurement budget section)")
    fig_lines = "\n".join(f"![{p.stem}](figures/{p.name})  \n`figures/{p.stem}.svg`"
                          for p in figures) or "_figures skipped_"
    measured = sum(s.report is not None for s in statuses)
    return f"""# NetMARKS testbed: {' vs '.join(c.schedulers)}, {k} replications

## Replications

This run is {k} independent replications of the same experiment, one after another on
the same machine: each has its own seed, so its own warm-up (and traffic matrix),
redeployments, creation orders, sampled layouts and measurements. Replicate 1 uses the
run's seed {c.seed} (it is the single run with that seed); the others' seeds are drawn
from it (numpy `SeedSequence({c.seed})`, child r-1). Each replicate is an ordinary
results directory with its own report (tables; its figures are skipped here for speed,
`harness report DIR/replicates/rN` draws them).

| replicate | seed | report | status |
|---|---|---|---|
{rows}

{measured} of {k} replicates have measurements; the tables below combine those.

## What was run (every replicate)

- schedulers: {', '.join(c.schedulers)} (baseline: {c.schedulers[0]}); backend
  {manifest.backend.name} ({manifest.backend.places}; measured on
  {manifest.backend.measures})
- items: {', '.join(manifest.items)}; sizes (bytes per unit): {', '.join(map(str, c.sizes))};
  protocols: {', '.join(c.protocols)}
- {c.deployments} redeployments per scheduler; {sampling}
- machine: {manifest.machine.cpu}, {manifest.machine.cores or '?'} cores; started
  {manifest.started_at}, finished {manifest.finished_at or '(not finished)'}

## How the intervals combine

Within one replicate, the intervals are its report's {level} percentile bootstrap over
its measured layouts and each layout's orders: they cover what varies inside one run.
They cannot cover what varies between runs (the warm-up's traffic matrix, the layouts
the redeployments happened to produce, the machine's state that day), and one command
has given 27 % and 48 % on different days. The replicates are independent runs, so the
spread of their estimates is the honest total variance of one run's estimate. The
combined estimate is the mean over the K replicates; its interval is the {level} t
interval on the K replicate estimates, mean ± t(K-1) · SD / √K (wide for small K: with
K = 2, t = 12.7; with K = 3, 4.3). `SD between` is the SD of the replicate estimates;
`SD / within SE` divides it by the within-run standard error (each replicate's
interval half-width / z, z = 1.96 at 95 %, averaged; n/a when the within-run intervals
have zero width). Near 1 a single run's interval is honest; well above 1 it is too
narrow by about that factor, and only the replicated interval should be quoted. The t
interval is not clipped: with few replicates it can leave 0..100 %.

## Headline, per replicate and combined

{md_combined}
Long form with every replicate's interval: `tables/replicate_estimates.csv`; combined:
`tables/replicates_combined.csv`.

## This run beside the paper (mean over replicates)

{md_beside}
Each replicate's own table is in its report. UP TO rows average each replicate's best
cell (not necessarily the same cell each time), so they keep the upward bias of a
best-of-many; MEAN rows do not.

## Figure

{fig_lines}
"""
