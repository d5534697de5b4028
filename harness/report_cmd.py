"""`harness report DIR`: rebuild tables, plots and report.md from a results directory."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from results.store import StoreError

__all__ = ["print_report", "print_sweep_report", "register"]

HELP = """Rebuild every table (CSV, Markdown, LaTeX), figure (PNG, SVG) and report.md of a
results directory; needs nothing but the directory. On a sweep directory (one with
sweep.json, from `harness sweep`) it rebuilds the sweep's tables, figures and report.md
from its points. On a scenario run's directory (`harness run --scenario`, with a
scenario/ folder and no layout measurements) it rebuilds the scenario's report.

Example:

  harness report runs/20260101T120000-kube_default+netmarks

  harness report runs/20260101T120000-sweep
"""

# (headline column, short title, unit); the legend under the table spells them out.
_COLUMNS = [
    ("mean_rt_largest_ms", "RT ms", ""),
    ("rt_reduction_mean_pct", "RT-mean", "%"),
    ("rt_reduction_max_pct", "RT-best", "%"),
    ("inter_node_transfers_pct", "xhops", "%"),
    ("inter_node_bytes_reduction_pct", "xbytes-", "%"),
    ("distinct_layouts", "layouts", ""),
]
_LEGEND = (
    "RT ms: mean response time at the largest size; RT-mean / RT-best: response-time "
    "reduction vs the baseline, mean over items / best item; xhops: share of transfers "
    "that crossed nodes; xbytes-: inter-node bytes saved vs the baseline; layouts: "
    "distinct layouts among the redeployments."
)


def print_report(root: Path, console: Console) -> None:
    from analysis.replicates import is_replicated
    from analysis.report import build_report
    from analysis.scenario import is_scenario_only
    from results.store import ResultsStore

    if is_scenario_only(root):  # `run --scenario`: no layout measurements, maybe no manifest
        _print_scenario(root, console)
        return
    if is_replicated(ResultsStore.open(root).manifest()):
        _print_replicated(root, console)
        return
    report = build_report(root)
    table = Table(title="Headline (baseline first)", caption=_LEGEND, box=box.SIMPLE_HEAD)
    table.add_column("scheduler", no_wrap=True)
    for _, title, _ in _COLUMNS:
        table.add_column(title, justify="right", no_wrap=True)
    for row in report.headline.to_dict("records"):
        cells = [str(row["scheduler"])]
        for key, _, unit in _COLUMNS:
            value = float(row[key])
            cells.append("n/a" if not math.isfinite(value) else
                         (f"{value:.0f}" if key == "distinct_layouts" else f"{value:.1f}{unit}"))
        table.add_row(*cells)
    console.print(table)
    console.print(f"report: {report.path}")
    for fig in report.figures:
        console.print(f"figure: {fig}")


def _print_scenario(root: Path, console: Console) -> None:
    """A scenario run: per scheduler, the pods it moved and the orders it failed."""
    from analysis.scenario import build_scenario_report

    report = build_scenario_report(root)
    table = Table(title="Scenario (baseline first)", box=box.SIMPLE_HEAD)
    for col in ("scheduler", "pods moved", "orders", "failed", "failed during moves"):
        table.add_column(col, justify="left" if col == "scheduler" else "right",
                         no_wrap=True)
    for r in report.moves.to_dict("records"):
        table.add_row(str(r["scheduler"]), str(r["moves"]), str(r["orders"]),
                      str(r["failed"]), str(r["failed_during_moves"]))
    console.print(table)
    console.print(f"report: {report.path}")
    for fig in report.figures:
        console.print(f"figure: {fig}")


def _print_replicated(root: Path, console: Console) -> None:
    """--replicates K: the combined headline; each replicate's report is in its folder."""
    from analysis.replicates_report import build_replicated_report

    report = build_replicated_report(root)
    table = Table(title=f"Headline over {len(report.replicates)} replicates",
                  caption=_REPLICATED_LEGEND, box=box.SIMPLE_HEAD)
    for col in ("headline", "scheduler", escape("mean [t CI]"), "SD", "SD/SE"):
        table.add_column(col, justify="left" if col in ("headline", "scheduler")
                         else "right", no_wrap=True)
    shown = report.combined[report.combined["metric"].isin(_REPLICATED)]
    for r in shown.to_dict("records"):
        ci = ("n/a" if not math.isfinite(r["mean"]) else f"{r['mean']:.1f}" + (
            f" [{r['ci_low']:.1f}, {r['ci_high']:.1f}]" if math.isfinite(r["ci_low"]) else ""))
        label = _REPLICATED[r["metric"]]
        if r["metric"] in ("rt_reduction_largest_pct", "inter_node_bytes_saved_pct"):
            label += f" ({r['group']})"  # the size; the protocol
        table.add_row(label, str(r["scheduler"]),
                      escape(ci), _num(r["sd_between"]), _num(r["sd_between_over_se_within"]))
    console.print(table)
    for status in report.replicates:
        console.print(f"replicate r{status.replicate.index} (seed {status.replicate.seed}): "
                      f"{status.report or status.status}", highlight=False)
    console.print(f"report: {report.path}")


def print_sweep_report(root: Path, console: Console) -> None:
    """Write a sweep's tables, figures and report.md; print where they are."""
    from analysis.sweep import build_sweep_report

    report = build_sweep_report(root)
    console.print(f"sweep report: {report.path} ({report.table['point'].nunique()} points "
                  f"with measurements, {len(report.missing)} without)")
    for fig in report.figures:
        console.print(f"figure: {fig}")


# The combined rows the terminal shows (report.md has them all), short titles.
_REPLICATED = {
    "rt_reduction_largest_pct": "RT-mean %",
    "rt_reduction_overall_pct": "RT all cells %",
    "inter_node_transfers_pct": "xhops %",
    "inter_node_bytes_saved_pct": "xbytes- %",
    "distinct_layouts": "layouts",
}
_REPLICATED_LEGEND = (
    "mean over the replicates with its t interval (K-1 df); SD: between the replicates; "
    "SD/SE: that SD over the within-run standard error (well above 1: one run's interval "
    "is too narrow). RT-mean: response-time reduction at the largest size, mean over "
    "items; RT all cells: over every item, size and protocol; xhops, xbytes-, layouts as "
    "in a single run's headline.")


def _num(x: float) -> str:
    return f"{x:.2f}" if math.isfinite(x) else "n/a"


def register(app: typer.Typer) -> None:
    @app.command("report", help=HELP)
    def report(
        directory: Annotated[Path, typer.Argument(
            help="a results directory of `harness run` (also with --scenario), or a "
                 "sweep directory of `harness sweep`")],
    ) -> None:
        from results.sweep import is_sweep

        console = Console(stderr=True)
        try:
            if is_sweep(directory):
                print_sweep_report(directory, console)
            else:
                print_report(directory, console)
        except (StoreError, ValueError) as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
