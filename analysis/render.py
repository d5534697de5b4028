"""Tables to files: raw CSV for machines, Markdown and LaTeX in the paper's layout for people."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

__all__ = ["ci_text", "markdown", "pretty", "write_table"]


def ci_text(mean: float, low: float, high: float, digits: int = 1) -> str:
    if not math.isfinite(mean):
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def pretty(long: pd.DataFrame, keys: list[str], baseline: str, *, digits: int = 1,
           unit: str = "") -> pd.DataFrame:
    """Wide table: one row per key, per scheduler "mean [CI]" and, beside each
    non-baseline scheduler, its reduction vs the baseline in percent."""
    if long.empty:
        return pd.DataFrame()
    schedulers = list(dict.fromkeys(long["scheduler"]))
    rows = []
    for key, group in long.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key, strict=True))
        by = group.set_index("scheduler")
        for s in schedulers:
            if s not in by.index:
                continue
            r = by.loc[s]
            row[f"{s}{unit}"] = ci_text(r["mean"], r["ci_low"], r["ci_high"], digits)
            if s != baseline:
                row[f"{s} vs {baseline} (%)"] = ci_text(
                    r["reduction_pct"], r["reduction_ci_low_pct"], r["reduction_ci_high_pct"], 1
                )
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency for something this small)."""
    if frame.empty:
        return "_no data_\n"
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|")


def write_table(raw: pd.DataFrame, shown: pd.DataFrame, out: Path, name: str,
                caption: str) -> str:
    """Write ``name``.csv (raw), .md and .tex (shown); return the Markdown text."""
    out.mkdir(parents=True, exist_ok=True)
    raw.to_csv(out / f"{name}.csv", index=False)
    text = markdown(shown)
    (out / f"{name}.md").write_text(f"{caption}\n\n{text}")
    latex = (
        shown.to_latex(index=False, caption=caption, label=f"tab:{name}", escape=True)
        if not shown.empty else f"% {caption}: no data\n"
    )
    (out / f"{name}.tex").write_text(latex)
    return text
