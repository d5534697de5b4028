"""Turn a results directory of `harness run` into paper-style tables, plots and report.md.

    from analysis import build_report
    report = build_report(Path("runs/<dir>"))   # tables/, figures/, report.md
    report.headline                              # one row per scheduler

Modules: ``estimate`` (layout-weighted means with bootstrap intervals), ``tables``
(the paper's tables from the raw data), ``breakdown`` (reductions per size, protocol
and item class), ``paired`` (the paired test vs the baseline), ``paper`` (this run
beside the paper's numbers), ``render`` (CSV/Markdown/LaTeX), ``plots`` (PNG/SVG),
``report`` and ``report_detail`` (report.md); ``scenario`` (with ``scenario_metrics`` and
``scenario_plots``) the report of a scenario run (``harness run --scenario``).
"""

from analysis.report import PAPER, Report, build_report

__all__ = ["PAPER", "Report", "build_report"]
