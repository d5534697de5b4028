"""The report's headline in detail: per size, protocol and item class, the paired test,
and this run beside the paper; written as tables (CSV, Markdown, LaTeX) and as the
text of report.md's sections."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis import breakdown, paired, paper, render
from analysis.tables import RunData

__all__ = ["Detail", "detail"]


@dataclass
class Detail:
    beside_paper: str  # the "This run beside the paper" table, Markdown
    section: str  # report.md's section on reductions per size/protocol/class + the test
    paper: pd.DataFrame  # long, as tables/beside_paper.csv
    tests: pd.DataFrame  # as tables/paired_test.csv


def detail(run: RunData, rt: pd.DataFrame, by: pd.DataFrame, lay: pd.DataFrame,
           out: Path) -> Detail:
    """Compute and write the tables; ``rt``, ``by``, ``lay``: the response-time, bytes
    and layouts tables of ``tables``."""
    base = run.baseline
    classes = breakdown.item_classes(run)
    cls_table = breakdown.item_class_table(run)
    sizes = breakdown.reduction_by_size(run, rt)
    protos = breakdown.reduction_by_protocol(run, rt)
    by_class = breakdown.reduction_by_class(run, rt)
    overall = breakdown.reduction_overall(run, rt)
    tests = paired.paired_tests(rt, base, classes=classes,
                                alpha=1.0 - run.config.confidence)
    beside = paper.beside_paper(
        baseline=base, schedulers=run.schedulers, protocols=run.config.protocols,
        classes=classes, rt=rt, overall=overall, by_class=by_class,
        transfers=breakdown.transfer_share_overall(run), by=by, lay=lay)

    def write(frame: pd.DataFrame, keys: list[str], name: str, caption: str) -> str:
        shown = _with_best(frame, render.pretty(frame, keys, base, unit=" (ms)"), keys, base)
        return render.write_table(frame, shown, out, name, caption)

    level = f"{run.config.confidence * 100:.0f} %"
    md_size = write(sizes, ["size"], "reduction_by_size",
                    f"Per message size, over every item and protocol: mean response time "
                    f"(ms) and mean reduction vs the baseline (%) [{level} CI]; best cell.")
    md_proto = write(protos, ["protocol"], "reduction_by_protocol",
                     f"Per protocol, over every item and size: mean response time (ms) and "
                     f"mean reduction vs the baseline (%) [{level} CI]; best cell.")
    md_class = write(by_class, ["item_class", "protocol"], "reduction_by_class",
                     f"Per item class and protocol, over the class's items and every size: "
                     f"mean response time (ms) and mean reduction (%) [{level} CI]; best "
                     f"cell.")
    md_items = render.write_table(cls_table, cls_table, out, "item_classes",
                                  "Item classes, from the economy's graph.")
    md_tests = render.write_table(tests, _pretty_tests(tests), out, "paired_test",
                                  f"Paired test vs the baseline: {paired.TEST}.")
    md_paper = render.write_table(beside, paper.pretty_beside_paper(beside), out,
                                  "beside_paper", "This run beside the paper.")
    pairs = int(rt.groupby(breakdown.CELL).ngroups) if not rt.empty else 0
    section = f"""## Reductions per size, protocol and item class

Each row is over a group of the response-time cells (item x size x protocol): the mean
over the group's cells of each cell's mean response time and of each cell's reduction
vs {base}, with {level} percentile bootstrap intervals (the estimator and bootstrap of
the response-time table; one resample of a scheduler's layouts for the whole group, each
cell's reduction computed pairwise inside the resample). "best cell" is the group's
largest reduction with that cell's own interval: an "up to" figure, biased upwards as
the best of several noisy cells; the mean is not.

### Per message size

{md_size}
### Per protocol

{md_proto}
### Per item class

Classes come from the economy's graph: a *simple chain* is an item whose dependency
closure is one path (each service in it has at most one input); every other item is a
*shared supply chain* (its supply branches; `shared_inputs` are the services reached
along two paths).

{md_items}
{md_class}
### Paired test against {base}

What is paired: each of the {pairs} cells (item x size x protocol) of the response-time
table, measured under {base} and under the scheduler in this run; the pair is the two
cells' estimated mean response times. The test is Wilcoxon's signed-rank test
(two-sided) on the log ratio of the two means per cell: a reduction is a ratio, and the
cells are too few and too mixed (sizes and items where placement cannot matter beside
ones where it decides) for a t-test's normal model. `faster` / `slower` / `ties`: cells
where the scheduler's mean was lower / higher / equal; the reductions are the median and
the geometric mean over the cells. The cells share the scheduler's layouts, so the test
asks whether it was faster consistently across cells on the layouts measured; which
layouts a scheduler produces is covered by the intervals above. Per protocol and per
class rows are not corrected for multiple testing.

{md_tests}
"""
    return Detail(beside_paper=md_paper, section=section, paper=beside, tests=tests)


def _with_best(raw: pd.DataFrame, shown: pd.DataFrame, keys: list[str],
               baseline: str) -> pd.DataFrame:
    """``pretty``'s table plus, per non-baseline scheduler, its best cell."""
    if raw.empty or shown.empty:
        return shown
    shown = shown.copy()
    for s in dict.fromkeys(raw["scheduler"]):
        if s == baseline:
            continue
        mine = raw[raw["scheduler"] == s].set_index(keys)
        texts = []
        for key in shown[keys].itertuples(index=False):
            k = tuple(key) if len(keys) > 1 else key[0]
            if k not in mine.index:
                texts.append("")
                continue
            r = mine.loc[k]
            value = render.ci_text(r["best_reduction_pct"], r["best_ci_low_pct"],
                                   r["best_ci_high_pct"])
            texts.append(f"{value} ({r['best_cell']})" if r["best_cell"] else value)
        shown[f"{s}: best cell (%)"] = texts
    return shown


def _pretty_tests(tests: pd.DataFrame) -> pd.DataFrame:
    if tests.empty:
        return tests
    shown = tests.drop(columns=["baseline"]).copy()
    shown["p_value"] = [f"{p:.2g}" if p == p else "n/a" for p in shown["p_value"]]
    for col in ("median_reduction_pct", "geomean_reduction_pct", "statistic"):
        shown[col] = [f"{v:.1f}" if v == v else "n/a" for v in shown[col]]
    return shown
