"""A paired test of each scheduler against the baseline, over the response-time cells.

What is paired: the cells of the response-time table (item x size x protocol). Every
cell was measured under both schedulers, on the same emulated cluster, in the same run,
so a cell's two means differ by the placement (and noise) only; pairing removes what
makes one cell slower than another (a larger message, a deeper item), which dwarfs
the difference between schedulers.

The test: Wilcoxon's signed-rank test, two-sided, on each pair's log ratio
d = log(mean under the scheduler) - log(mean under the baseline).

- The log ratio, because a reduction is a ratio: 30 % at 16 B and at 1 MiB is the same
  effect, while raw differences in ms would let the largest sizes decide alone.
- Signed ranks rather than a paired t-test on the same d, because the cells are few (a
  dozen in the quick preset) and their log ratios are no sample from one normal
  distribution: they mix cells where placement cannot matter (a tiny message, an item
  that stays on one node) with cells where it decides, and a t-test on such a mixture
  with few pairs has no trustworthy level. The signed-rank test assumes only that,
  without a difference, d is as likely positive as negative.

What the p-value does not cover: the cells share the scheduler's layouts (each layout
is measured for every cell), so they are not independent draws of layouts; the test
asks whether the scheduler was faster consistently across cells on the layouts this
run measured. The uncertainty about which layouts a scheduler produces is in the
bootstrap intervals of the other tables. With n pairs that are not ties the smallest
two-sided p the exact test can give is 2 / 2**n: 6 pairs or more are needed for 0.05.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["TEST", "paired_tests", "signed_rank"]

TEST = "Wilcoxon signed-rank (two-sided) on log response time, paired by item x size x protocol"
_CELL = ["item", "size", "protocol"]


def signed_rank(log_ratios: np.ndarray, *, alpha: float = 0.05) -> dict[str, Any]:
    """The test on one set of paired log ratios (scheduler over baseline per cell)."""
    d = np.asarray(log_ratios, dtype=float)
    d = d[np.isfinite(d)]
    nonzero = d[d != 0]
    out: dict[str, Any] = {
        "pairs": len(d),
        "faster": int((d < 0).sum()),
        "slower": int((d > 0).sum()),
        "ties": int((d == 0).sum()),
        "median_reduction_pct": 100 * (1 - float(np.exp(np.median(d)))) if len(d) else np.nan,
        "geomean_reduction_pct": 100 * (1 - float(np.exp(np.mean(d)))) if len(d) else np.nan,
        "statistic": np.nan,
        "p_value": np.nan,
    }
    if len(d) == 0:
        return {**out, "verdict": "not measured"}
    if len(nonzero) == 0:
        return {**out, "p_value": 1.0, "verdict": "no difference (identical means)"}
    result = stats.wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided")
    p = float(result.pvalue)
    out.update(statistic=float(result.statistic), p_value=p)
    if p < alpha:
        verdict = "faster" if np.median(nonzero) < 0 else "slower"
    elif 2.0 / 2 ** len(nonzero) >= alpha:
        needed = math.floor(math.log2(2.0 / alpha)) + 1
        verdict = f"too few pairs to tell ({len(nonzero)}; {needed} or more needed)"
    else:
        verdict = "no clear difference"
    return {**out, "verdict": verdict}


def paired_tests(rt: pd.DataFrame, baseline: str, *,
                 classes: Mapping[str, str] | None = None,
                 alpha: float = 0.05) -> pd.DataFrame:
    """One row per scheduler (not the baseline) and set of cells: every cell, and per
    protocol and per item class when there are several. ``rt``: the long response-time
    table (``tables.response_time_table``); ``classes``: item -> class."""
    if rt.empty:
        return pd.DataFrame()
    base = rt[rt["scheduler"] == baseline].set_index(_CELL)["mean"]
    subsets: list[tuple[str, pd.Series]] = [("all cells", pd.Series(True, index=base.index))]
    protocols = base.index.get_level_values("protocol")
    if len(set(protocols)) > 1:
        subsets += [(p, pd.Series(protocols == p, index=base.index))
                    for p in dict.fromkeys(protocols)]
    if classes:
        item_class = base.index.get_level_values("item").map(classes)
        present = [c for c in dict.fromkeys(item_class) if isinstance(c, str)]
        if len(present) > 1:
            subsets += [(c, pd.Series(item_class == c, index=base.index)) for c in present]
    rows = []
    for scheduler in dict.fromkeys(rt["scheduler"]):
        if scheduler == baseline:
            continue
        mine = rt[rt["scheduler"] == scheduler].set_index(_CELL)["mean"].reindex(base.index)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.log(mine.to_numpy(dtype=float)) - np.log(base.to_numpy(dtype=float))
        for name, keep in subsets:
            rows.append({"scheduler": scheduler, "baseline": baseline, "cells": name,
                         **signed_rank(d[keep.to_numpy()], alpha=alpha)})
    return pd.DataFrame(rows)
