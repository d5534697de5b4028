"""`harness report DIR`: rebuild tables, plots and report.md from a results directory."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from results.store import StoreError

__all__ = ["print_report", "register"]

HELP = """Rebuild every table (CSV, Markdown, LaTeX), figure (PNG, SVG) and report.md of a
results directory; needs nothing but the directory.

Example:

  harness report runs/20260101T120000-kube_default+netmarks
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
    from analysis.report import build_report

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


def register(app: typer.Typer) -> None:
    @app.command("report", help=HELP)
    def report(
        directory: Annotated[Path, typer.Argument(help="a results directory of `harness run`")],
    ) -> None:
        console = Console(stderr=True)
        try:
            print_report(directory, console)
        except (StoreError, ValueError) as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
